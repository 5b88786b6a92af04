// Training throughput (issue 13 §4): the reference job of DESIGN §4 (G = 3,200, 128 px, latent 4, MLPs
// 3 x 512, batch 256) through the real trainer (engine/trainer.h: cache -> features -> epochs), reported as
// particle-steps/s per epoch (epoch 1 warms up, epoch 2 is profiled phase by phase, the throughput is the later
// epochs', run without the profile's synchronisations) and against the limit the BLAS sets: the step's own
// GEMMs (every dense layer's forward and backward products, the same shapes) timed alone through ops::gemm in
// the same run, so
//   BLAS limit = batch / (time of those GEMMs),  fraction = achieved / limit,
//   non-GEMM share = 1 - GEMM time / step time (projection, Adam, activations, copies, feature reads);
// the same share in process CPU seconds (getrusage: all threads), and each phase's CPU seconds per step,
// which the other processes of a shared machine disturb far less than the wall clock, and the main thread's
// share of them (run with OMP_WAIT_POLICY=passive to see which phases leave the other threads idle).
// Also decode's time per latent point (decoder + map, file writing excluded), the memory plan of
// G = 100,000 at box 256, batch 64, and the peak RSS (VmHWM) after training (checkpoint written) and at the end.
// --steps S trains one epoch of exactly S batches (S x batch particles): the way to measure a large job
// (`--G 100000 --box 256 --batch 64 --steps 3`) without a full data set.
//
//   bench_train [--quick] [--device cpu|cuda|auto] [--G 3200] [--box 128] [--batch 256] [--particles N]
//               [--epochs E | --steps S] [--feature-pca K] [--out bench_train.json]
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "bench/common.h"
#include "bench/step_gemms.h"
#include "core/buffer.h"
#include "core/context.h"
#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "core/threads.h"
#include "engine/model_params.h"
#include "engine/particle_cache.h"
#include "engine/render.h"
#include "engine/simulate.h"
#include "engine/trainer.h"
#include "kernels/philox.h"
#include "nn/ops.h"

using namespace cugmm;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  try {
    bool quick = false;
    std::string device = "auto", out = "bench_train.json";
    int G = 3200, box = 128, batch = 256, particles = 0, epochs = 0, steps = 0, pca = 0;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
      if (a == "--quick") quick = true;
      else if (a == "--device") device = next();
      else if (a == "--G") G = std::stoi(next());
      else if (a == "--box") box = std::stoi(next());
      else if (a == "--batch") batch = std::stoi(next());
      else if (a == "--particles") particles = std::stoi(next());
      else if (a == "--epochs") epochs = std::stoi(next());
      else if (a == "--steps") steps = std::stoi(next());
      else if (a == "--feature-pca") pca = std::stoi(next());
      else if (a == "--out") out = next();
      else {
        std::fprintf(stderr, "usage: bench_train [--quick] [--device cpu|cuda|auto] [--G N] [--box N] [--batch N] "
                             "[--particles N] [--epochs E | --steps S] [--feature-pca K] [--out FILE]\n");
        return 2;
      }
    }
    if (steps > 0) {
      if (particles || epochs) throw Error("--steps sets the particles and epochs: give neither with it");
      particles = steps * batch;
      epochs = 1;
    }
    if (particles == 0) particles = quick ? 2 * batch + 16 : 4 * batch + 16;
    if (epochs == 0) epochs = 3;  // warm-up, profiled, unprofiled (the throughput)
    const Device dev = pick_device(device);
    const std::string dir = (fs::temp_directory_path() / ("bench_train_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);
    set_quiet(true);
    bench::RandomSet set = bench::random_set(G, box, particles, dir);
    io::GaussianModel& model = set.model;
    ParticleCache& cache = set.cache;
    const double t_data = set.seconds;

    TrainConfig c;
    c.batch = batch;
    c.epochs = epochs;
    c.val_fraction = 0;
    c.loss_every = 1 << 30;  // the epoch end's read-back only
    // DESIGN §4's reference job: the encoder reads the 5G features (88.2 MFLOP per particle-step at G = 3,200).
    // The default input since docs/accuracy.md round 9 (25 noise-whitened components) is a far smaller encoder
    // and a minute's fit before training; pinned here so the figures stay those of the job the issue defines.
    // --feature-pca K: the encoder reads K plain principal components instead (the default input's shape, read
    // from the per-run input table, without the noise-whitened fit).
    c.feature_pca = pca;
    c.feature_noise_whiten = c.feature_view_nuisance = false;
    Context cx(dev);
    // The trainer is released before the GEMM reference and decode allocate their own buffers, so the peak
    // RSS after training is the training job's own (networks, Adam, batch, checkpoint writing).
    auto trainer = std::make_unique<Trainer>(cx, cache, model, c, dir);
    // Epoch 1 warms up; epoch 2 (the only one with --steps) is profiled, its phases each synchronised; the
    // throughput is the best later epoch's, run without those synchronisations, so a GPU's overlap of the host's
    // batch loading with the device's work counts (the profiled epoch's when there is no later one).
    const int profiled_epoch = epochs >= 2 ? 2 : 1;
    const bool unprofiled_throughput = epochs > 2;
    trainer->profile = true;
    trainer->profile_epoch = profiled_epoch;
    trainer->prepare_features(false);
    const double features_per_s = particles / trainer->seconds_features;
    trainer->train(false);
    const size_t rss_training = bench::peak_rss_bytes();
    const size_t device_peak = device_peak_bytes(), device_in_use = device_in_use_bytes();
    const std::vector<EpochRecord> h = trainer->history();
    const std::vector<std::pair<std::string, double>> phases = trainer->phase_seconds;
    const std::vector<double> phases_cpu = trainer->phase_cpu_seconds;
    const std::vector<double> phases_main_cpu = trainer->phase_main_cpu_seconds;
    const size_t profiled_steps = trainer->profiled_steps;
    const MemoryPlan run_plan = trainer->memory_plan();
    const size_t steps_per_epoch = (trainer->train_count() / size_t(batch)) * size_t(batch);
    trainer.reset();
    std::vector<double> per_epoch;
    for (const auto& r : h) per_epoch.push_back(double(steps_per_epoch) / r.step_seconds);
    double best = 0;
    for (size_t e = 2; e < per_epoch.size(); ++e) best = std::max(best, per_epoch[e]);
    if (!unprofiled_throughput) best = per_epoch[size_t(profiled_epoch - 1)];

    // The step's GEMMs alone, same context, same shapes.
    const std::vector<bench::GemmShape> shapes = bench::step_gemms({encoder_arch(c, G), decoder_arch(c, G)}, c.batch);
    const double flops = bench::gemm_flops(shapes);
    // The same comparison in CPU seconds (all threads), which the other processes of a shared machine
    // disturb far less than wall-clock time: the profiled epoch's step against its GEMMs'.
    double gemm_cpu = 0;
    const double t_gemm = bench::time_gemms(cx, shapes, 1, quick ? 0.5 : 2.0, 3, &gemm_cpu);
    const double blas_limit = batch / t_gemm, t_step = batch / best;
    double step_cpu = 0;
    for (double v : phases_cpu) step_cpu += v;
    step_cpu /= double(std::max<size_t>(1, profiled_steps));

    // Decode: decoder + map per point (file writing excluded), through the checkpoint as `cugmm decode` does.
    TrainedModel tm = load_trained(dir + "/model.ckpt", cx);
    const int points = steps > 0 ? 2 : 16;  // a large job: a few points, a map each
    std::vector<float> z(size_t(points) * c.latent);
    for (size_t i = 0; i < z.size(); ++i) z[i] = philox_normal(5, 0, i);
    double t_dec = 0, t_map = 0;
    for (int rep = 0; rep < 2; ++rep) {  // the first pass warms up
      auto a = std::chrono::steady_clock::now();
      std::vector<float> p = decode_points(tm, cx, z, points);
      auto b = std::chrono::steady_clock::now();
      for (int k = 0; k < points; ++k) {
        io::GaussianModel g = model_from_params(
            std::vector<float>(p.begin() + k * 5 * size_t(G), p.begin() + (k + 1) * 5 * size_t(G)), tm.neutral);
        render_volume(g);
      }
      auto e = std::chrono::steady_clock::now();
      t_dec = std::chrono::duration<double>(b - a).count() / points;
      t_map = std::chrono::duration<double>(e - b).count() / points;
    }

    TrainConfig big = c;
    big.batch = 64;
    MemoryPlan plan = plan_memory(big, 100000, 256, 25736, 100000);  // band: full band at 256 px (rings <= 128)

    nlohmann::json j;
    j["machine"] = bench::machine();
    j["device"] = device_name(dev);
    j["job"] = {{"G", G}, {"box", box}, {"latent", c.latent}, {"hidden", c.hidden}, {"depth", c.depth}, {"feature_pca", pca},
                {"batch", batch}, {"particles", particles}, {"epochs", epochs},
                {"feature_precision", feature_precision_name(c.feature_precision)}};
    j["data_seconds"] = t_data;
    j["features_per_s"] = features_per_s;
    j["particle_steps_per_s_per_epoch"] = per_epoch;
    j["particle_steps_per_s"] = best;
    j["profiled_epoch"] = profiled_epoch;
    j["throughput_from_unprofiled_epochs"] = unprofiled_throughput;
    j["step_s"] = t_step;
    j["gemm_flop_per_particle_step"] = flops / batch;
    j["gemm_s_per_step"] = t_gemm;
    j["gemm_gflops"] = flops / t_gemm / 1e9;
    j["blas_limit_particle_steps_per_s"] = blas_limit;
    j["fraction_of_blas_limit"] = best / blas_limit;
    j["non_gemm_share_of_step"] = 1 - t_gemm / t_step;
    j["cpu_s_per_step"] = step_cpu;
    j["gemm_cpu_s_per_step"] = gemm_cpu;
    j["non_gemm_share_of_step_cpu"] = 1 - gemm_cpu / step_cpu;
    j["decode_ms_per_point"] = {{"decoder", 1e3 * t_dec}, {"map", 1e3 * t_map}, {"total", 1e3 * (t_dec + t_map)}};
    j["peak_rss_bytes"] = bench::peak_rss_bytes();
    j["peak_rss_after_training_bytes"] = rss_training;
    if (dev == Device::cuda) {  // the stream-ordered pool's high-water mark, and the card's use after training
      j["device_peak_pool_bytes"] = device_peak;
      j["device_in_use_after_training_bytes"] = device_in_use;
    }
    {
      double total = 0;
      for (const auto& ph : phases) total += ph.second;
      const double steps_done = double(std::max<size_t>(1, profiled_steps));
      nlohmann::json pj = nlohmann::json::object(), pc = nlohmann::json::object(), pm = nlohmann::json::object(),
                     pw = nlohmann::json::object();
      std::printf("  phases of the step (same run, epoch %d, synchronised after each):\n"
                  "    %-45s %6s %9s %9s %9s\n", profiled_epoch, "", "wall", "wall s", "CPU s", "main CPU");
      for (size_t i = 0; i < phases.size(); ++i) {
        pj[phases[i].first] = phases[i].second / total;
        pw[phases[i].first] = phases[i].second / steps_done;
        pc[phases[i].first] = phases_cpu[i] / steps_done;
        pm[phases[i].first] = phases_main_cpu[i] / steps_done;
        std::printf("    %-45s %5.1f%% %9.4f %9.4f %9.4f\n", phases[i].first.c_str(), 100 * phases[i].second / total,
                    phases[i].second / steps_done, phases_cpu[i] / steps_done, phases_main_cpu[i] / steps_done);
      }
      j["step_phase_fractions"] = pj;
      j["step_phase_seconds"] = phases;
      j["step_phase_wall_s_per_step"] = pw;
      j["step_phase_cpu_s_per_step"] = pc;
      j["step_phase_main_thread_cpu_s_per_step"] = pm;
    }
    auto plan_json = [](const MemoryPlan& mp) {
      nlohmann::json items = nlohmann::json::array();
      for (const auto& it : mp.items) items.push_back({{"what", it.what}, {"bytes", it.bytes}});
      return nlohmann::json{{"items", items}, {"total_bytes", mp.total}, {"checkpoint_host_bytes", mp.checkpoint_host},
                            {"feature_file_bytes", mp.feature_file}};
    };
    j["memory_plan_of_this_run"] = plan_json(run_plan);
    j["memory_plan_G100000_box256_batch64"] = plan_json(plan);  // feature file: of 100,000 particles
    std::printf("train G=%d box %d batch %d on %s: %.0f particle-steps/s (epochs:", G, box, batch, device_name(dev), best);
    for (double v : per_epoch) std::printf(" %.0f", v);
    std::printf("; epoch %d profiled%s)\n", profiled_epoch, unprofiled_throughput ? "" : ", the throughput's");
    std::printf("  its GEMMs alone: %.4f s per step (%.1f GFLOP/s, %.1f MFLOP per particle-step) -> BLAS limit %.0f "
                "particle-steps/s; reached %.0f%%, non-GEMM share of the step %.0f%%\n",
                t_gemm, flops / t_gemm / 1e9, flops / batch / 1e6, blas_limit, 100 * best / blas_limit,
                100 * (1 - t_gemm / t_step));
    std::printf("  CPU time (all threads): %.4f s per step, its GEMMs alone %.4f s -> non-GEMM share %.0f%%\n",
                step_cpu, gemm_cpu, 100 * (1 - gemm_cpu / step_cpu));
    std::printf("  features %.0f particles/s; decode %.2f ms per point (decoder %.2f, map %.2f)\n", features_per_s,
                1e3 * (t_dec + t_map), 1e3 * t_dec, 1e3 * t_map);
    std::printf("  memory plan, G = 100,000 at box 256, batch 64:\n%s\n", plan.text().c_str());
    std::printf("  memory plan of this run:\n%s\n  peak RSS after training %s, at the end %s\n",
                run_plan.text().c_str(), format_bytes(rss_training).c_str(),
                format_bytes(bench::peak_rss_bytes()).c_str());
    if (dev == Device::cuda)
      std::printf("  GPU memory: allocator high-water mark %s; in use on the card after training %s\n",
                  format_bytes(device_peak).c_str(), format_bytes(device_in_use).c_str());
    bench::write_json(out, j);
    fs::remove_all(dir);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_train: %s\n", e.what());
    return 1;
  }
}
