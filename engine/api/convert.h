// Between the library API's plain types (include/cugmm/) and the engine's own. Internal.
#pragma once
#include "cugmm/data.h"
#include "cugmm/settings.h"
#include "engine/fit_map.h"
#include "engine/pose_refine.h"
#include "engine/trainer.h"
#include "io/model.h"

namespace cugmm {

io::GaussianModel to_model(const Gaussians& g);  // throws when the arrays differ in length
Gaussians from_model(const io::GaussianModel& m);

// Through TrainConfig's JSON (the checkpoint's form), so a setting TrainConfig gains and TrainSettings
// lacks is an error here, not a silent default (tests/test_api.cpp compares the keys). `G`: the model's
// Gaussian count, for movable_gaussians. Values out of the program's ranges are refused, naming the field.
TrainConfig to_config(const TrainSettings& s, int G);
TrainSettings from_config(const TrainConfig& c);
nlohmann::json settings_json(const TrainSettings& s);  // TrainConfig::to_json's keys

FitMapOptions to_fit_options(const FitSettings& s);

// Checked as `cugmm refine-pose` checks its options (ranges, bands coarse to fine), naming the field; minres
// NaN leaves the options' default (a run's own is filled in later).
PoseRefineOptions to_pose_options(const PoseSettings& s);

}  // namespace cugmm
