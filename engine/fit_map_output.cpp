// fit-map's output files (engine/fit_map.h).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <sstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "engine/fit_map.h"
#include "engine/fit_map_detail.h"
#include "engine/render.h"
#include "io/atomic_file.h"
#include "io/mrc.h"
#include "io/plot.h"

namespace cugmm {

namespace {

nlohmann::json curve_json(const FscCurve& c) {
  nlohmann::json j = nlohmann::json::array();
  for (size_t s = 1; s < c.value.size(); ++s) j.push_back({{"shell", s}, {"resolution", c.resolution(int(s))}, {"fsc", c.value[s]}});
  return j;
}

bool fits_pdb(const io::GaussianModel& m) {
  if (m.size() > 99999) return false;
  for (float s : m.width)
    if (8 * M_PI * M_PI * double(s) * s > 999.99) return false;
  return true;
}

}  // namespace

void write_fit_map_outputs(const std::string& dir, const FitMapInputs& in, const FitMapResult& r) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  const fs::path d(dir);
  io::write_model((d / "model.txt").string(), r.model);
  io::write_pseudo_atoms((d / "model.cif").string(), r.model);
  // PDB's B field stops at 999.99 (s <= 3.56 Å) and serials at 99,999: past those only mmCIF is exact.
  if (fits_pdb(r.model)) io::write_pseudo_atoms((d / "model.pdb").string(), r.model);
  io::write_cmm((d / "model.cmm").string(), r.model);
  // On the map's grid: same box, pixel size, start and origin, so it overlays the map in ChimeraX.
  io::Image v = render_volume(r.model, in.map.nx, in.map.pixel_size);
  std::copy(in.map.start, in.map.start + 3, v.start);
  std::copy(in.map.origin, in.map.origin + 3, v.origin);
  io::write_mrc((d / "model.mrc").string(), v, false);

  {
    std::ostringstream f;
    f << "# shell frequency(1/Å) resolution(Å) fsc_model_map" << (r.c_ref.empty() ? "" : " fsc_half_maps c_ref") << "\n";
    for (size_t s = 1; s < r.fsc.value.size(); ++s) {
      f << s << " " << r.fsc.frequency(int(s)) << " " << r.fsc.resolution(int(s)) << " " << r.fsc.value[s];
      if (!r.c_ref.empty()) f << " " << r.half_fsc.value[s] << " " << r.c_ref[s];
      f << "\n";
    }
    io::write_file_atomic((d / "fsc.txt").string(), f.str());
  }
  {
    io::Plot p;
    p.title("model vs map FSC").xlabel("spatial frequency (Å⁻¹)").ylabel("FSC").ylim(-0.1, 1.05);
    std::vector<double> x, y, c;
    for (size_t s = 1; s < r.fsc.value.size(); ++s) {
      x.push_back(r.fsc.frequency(int(s)));
      y.push_back(r.fsc.value[s]);
      if (!r.c_ref.empty()) c.push_back(r.c_ref[s]);
    }
    p.add_series("model vs map", x, y);
    if (!c.empty()) p.add_series("C_ref", x, c);
    p.add_hline(0.5, "0.5");
    p.add_hline(0.143, "0.143");
    p.write_png((d / "fsc.png").string());
  }

  const FitMapOptions& o = r.options;
  nlohmann::json j;
  j["options"] = fit_detail::tuning_json(o);
  j["options"].update({{"map", o.map_path}, {"half_maps", {o.half1_path, o.half2_path}}, {"mask", o.mask_path},
                       {"init", o.init_path}, {"threads", o.threads}, {"device", r.device}});
  j["map"] = {{"box", in.map.nx}, {"pixel_size", in.map.pixel_size}};
  nlohmann::json rounds = nlohmann::json::array();
  for (const FitRound& fr : r.rounds)
    rounds.push_back({{"round", fr.index + 1}, {"gaussians", fr.gaussians}, {"resolution", fr.resolution},
                      {"iterations", fr.iterations}, {"loss", fr.loss}, {"fsc", curve_json(fr.fsc)},
                      {"fsc_0.5", fr.fsc.resolution_at(0.5)}, {"seconds", fr.seconds}});
  j["rounds"] = rounds;
  j["gaussians"] = r.model.size();
  j["dropped_by_mask"] = r.dropped_by_mask;
  j["fsc"] = curve_json(r.fsc);
  if (!r.c_ref.empty()) {
    j["half_map_fsc"] = curve_json(r.half_fsc);
    j["c_ref"] = r.c_ref;
  }
  j["resolution_fsc_0.5"] = r.res_fsc05;
  j["resolution_fsc_0.143"] = r.res_fsc0143;
  j["stop_rule"] = {{"reached", r.reached}, {"worst_ratio", r.worst_ratio}, {"failing_shells", r.failing_shells},
                    {"verdict", r.verdict}};
  j["warnings"] = r.warnings;
  j["seconds"] = r.seconds;
  io::write_file_atomic((d / "fit.json").string(), j.dump(2) + "\n");  // last: its presence means complete
  // The fit is on disk whole: its checkpoint has served.
  if (!o.checkpoint.empty()) {
    fs::remove(o.checkpoint);
    io::remove_stale_temps(o.checkpoint);
  }
}

}  // namespace cugmm
