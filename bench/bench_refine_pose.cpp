// Pose refinement accuracy (issue 14 item 4): a rigid simulated particle (the built-in example's atoms,
// lengthened by --atoms-scale; the arm held still) whose STAR poses carry a known error, refined by the
// engine of `cugmm refine-pose --model` against the residue model (engine/residue_model.h); the RMS
// geodesic angle and shift error against the truth before and after, and beside them, with --relion, one
// iteration of relion_refine's local search (maximum likelihood) around the STAR poses given the true map.
// Prints and writes JSON.
#include <sys/resource.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <unistd.h>

#include "bench/common.h"
#include "core/error.h"
#include "core/log.h"
#include "core/threads.h"
#include "engine/example_atoms.h"
#include "engine/model_params.h"
#include "engine/particle_cache.h"
#include "engine/particle_poses.h"
#include "engine/pose_refine.h"
#include "engine/residue_model.h"
#include "engine/simulate_system.h"
#include "io/atoms.h"
#include "io/particles.h"

using namespace cugmm;
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

std::vector<ParticlePose> poses_of(const io::ParticleSet& set) {
  std::vector<ParticlePose> p;
  for (const io::Particle& q : set.particles) p.push_back({q.rot, q.tilt, q.psi, q.origin_x, q.origin_y});
  return p;
}

// `copies` of the atoms about the z axis (a particle ~copies x the mass): copy k moved `offset` Å along -y
// (the side away from its arm), turned 360 k / copies degrees about z and raised 8 k Å (so the assembly has
// no exact symmetry), its chains renamed (A, B, C -> A1, B1, C1, ...) so each residue stays its own.
io::AtomicModel assembly(const io::AtomicModel& one, int copies, double offset) {
  if (copies == 1) return one;
  io::AtomicModel m;
  m.source = one.source + " x" + std::to_string(copies);
  for (int k = 0; k < copies; ++k) {
    const double t = 2 * M_PI * k / copies, c = std::cos(t), sn = std::sin(t);
    for (io::Atom a : one.atoms) {
      const double x = a.x, y = a.y - offset;
      a.x = float(c * x - sn * y);
      a.y = float(sn * x + c * y);
      a.z += float(8.0 * k);
      if (k > 0) a.chain += std::to_string(k);
      m.atoms.push_back(a);
    }
  }
  return m;
}

// The particle's mass as protein: its electrons (the atoms' weights in the simulation) at 0.54 electrons per
// Da, the average residue's (C4.9 H7.8 N1.4 O1.5 S0.04: ~59.6 electrons in ~110 Da). The example's atoms
// are N, CA, C, O and CB (33 electrons a residue), so this counts what scatters, not the residues.
double scattering_kda(const io::AtomicModel& m) {
  double e = 0;
  for (const io::Atom& a : m.atoms) e += a.electrons;
  return e / 0.54 / 1000;
}

nlohmann::json errors_json(const PoseErrors& e) { return {{"rms_angle_deg", e.deg}, {"rms_shift_px", e.px}}; }

// CPU seconds (user + system) of the finished child processes (relion_refine's threads).
double children_cpu_seconds() {
  rusage u{};
  ::getrusage(RUSAGE_CHILDREN, &u);
  return double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + 1e-6 * double(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    TruthSimOptions o = pose_refinement_set(500);
    o.true_maps = 1;  // the map relion_refine is given
    // Three copies of the example lengthened 2.1 times: 2433 residues, ~150 kDa of scattering mass (issue 14's
    // size); --copies 1 --atoms-scale 2.5 is the single, elongated ~59 kDa particle measured first.
    double atoms_scale = 2.1, offset = 20;
    int copies = 3;
    int relion_count = 0;
    std::vector<int> relion_orders = {6};
    std::string bands = "20,12,8,6,4,3", search = "", loss = "snr", out = "bench_refine_pose.json", dir;
    PoseRefineOptions po;
    for (int i = 1; i < argc; ++i) {
      std::string a = argv[i];
      auto next = [&] { return std::string(i + 1 < argc ? argv[++i] : ""); };
      if (a == "--quick") { o.count = 64; o.box = 64; o.pixel = 3.0; atoms_scale = 1; copies = 1; }
      else if (a == "--count") o.count = std::stoi(next());
      else if (a == "--box") o.box = std::stoi(next());
      else if (a == "--pixel") o.pixel = std::stod(next());
      else if (a == "--snr") o.snr = std::stod(next());
      else if (a == "--no-ctf") o.ctf = false;
      else if (a == "--pose-error") o.pose_error_deg = std::stod(next());
      else if (a == "--shift-error") o.shift_error_px = std::stod(next());
      else if (a == "--atoms-scale") atoms_scale = std::stod(next());
      else if (a == "--copies") copies = std::stoi(next());
      else if (a == "--bands") bands = next();
      else if (a == "--search") search = next();
      else if (a == "--loss") loss = next();
      else if (a == "--iterations") po.iterations = std::stoi(next());
      else if (a == "--relion") relion_count = std::stoi(next());
      else if (a == "--relion-healpix") {
        relion_orders.clear();
        std::stringstream list(next());
        for (std::string v; std::getline(list, v, ',');) relion_orders.push_back(std::stoi(v));
      }
      else if (a == "--dir") dir = next();
      else if (a == "--out") out = next();
      else {
        std::fprintf(stderr, "usage: bench_refine_pose [--quick] [--count N] [--box N] [--pixel A] [--snr S] "
                             "[--no-ctf] [--pose-error DEG] [--shift-error PX] [--atoms-scale S] [--copies K] [--bands A,B,C] "
                             "[--search DEG,PX] [--loss snr|frc] [--iterations N] [--relion N (particles for relion_refine; 0: none)] "
                             "[--relion-healpix ORDER,... (one run each, oversampled once; default 6: 0.47 degrees)] "
                             "[--dir DIR] [--out FILE]\n");
        return 2;
      }
    }
    po.bands = parse_bands(bands, "--bands");
    if (!search.empty() && std::sscanf(search.c_str(), "%lf,%lf", &po.search_deg, &po.search_px) != 2)
      throw Error("--search: DEG,PX");
    if (loss != "snr" && loss != "frc") throw Error("--loss: snr or frc");
    if (copies < 1) throw Error("--copies: at least 1");
    if (relion_orders.empty()) throw Error("--relion-healpix: one or more healpix orders, e.g. 5,6");
    if (dir.empty()) dir = (fs::temp_directory_path() / ("bench_refine_pose_" + std::to_string(::getpid()))).string();
    fs::create_directories(dir);

    const HeteroSystem sys = rigid_particle(assembly(make_example_atoms(atoms_scale).model, copies, offset));
    set_quiet(true);
    auto t0 = std::chrono::steady_clock::now();
    const SimulatedTruth truth = simulate_system(sys, o, dir);
    const double t_sim = seconds_since(t0);
    const io::GaussianModel model = residue_model(sys, o.box, o.pixel);
    const double kda = scattering_kda(sys.atoms);
    io::write_model(dir + "/residues.txt", model);
    const io::ParticleSet set = io::read_particles(truth.star);
    const PoseErrors before = pose_errors(sys, o, poses_of(set));
    std::printf("rigid particle: %d cop%s, %zu residues, %.0f kDa of scattering mass, box %d at %.2f Å, %d particles, "
                "SNR %g; STAR error %.3f degrees, %.3f px RMS (simulation %.1f s)\n",
                copies, copies == 1 ? "y" : "ies", model.size(), kda, o.box, o.pixel, o.count, o.snr, before.deg,
                before.px, t_sim);

    // refine-pose's engine against the residue model, as `cugmm refine-pose --model` runs it.
    CacheOptions co;
    co.particles = truth.star;
    co.maxres = po.bands.back();
    ParticleCache cache = open_particle_cache(co, dir + "/particles.cugmm-cache", true);
    const std::vector<float> row = params_from_model(model);
    if (loss == "snr") po.weight_model = row;
    Context cx(Device::cpu);
    t0 = std::chrono::steady_clock::now();
    const double cpu0 = process_cpu_seconds();
    const PoseRefineResult r = refine_poses(cx, cache, int(model.size()),
                                            [&](const size_t*, int n, float* rows) {
                                              for (int i = 0; i < n; ++i)
                                                std::copy(row.begin(), row.end(), rows + size_t(i) * row.size());
                                            },
                                            po);
    const double t_refine = seconds_since(t0), cpu_refine = process_cpu_seconds() - cpu0;
    std::vector<ParticlePose> after(set.particles.size());
    for (size_t i = 0; i < cache.count(); ++i) after[size_t(cache.particle(i).source_row)] = r.after[i];
    const PoseErrors ours = pose_errors(sys, o, after);
    std::printf("refine-pose (bands %s Å, %s score%s): %.3f degrees, %.3f px RMS; %.1f s (%.1f particles/s), %.1f CPU-s\n",
                bands.c_str(), loss.c_str(),
                search.empty() ? "" : (", search " + search).c_str(), ours.deg, ours.px, t_refine, o.count / t_refine, cpu_refine);

    nlohmann::json doc;
    doc["machine"] = bench::machine();
    doc["setup"] = {{"system", "built-in example atoms x" + std::to_string(atoms_scale) + ", " + std::to_string(copies) +
                                   " copies, rigid"},
                    {"copies", copies}, {"residues", model.size()}, {"scattering_kda", kda}, {"box", o.box},
                    {"pixel", o.pixel}, {"particles", o.count}, {"snr", o.snr}, {"ctf", o.ctf}, {"pose_error_deg", o.pose_error_deg},
                    {"shift_error_px", o.shift_error_px}, {"seed", o.seed}, {"model", "residue model (2.5 Å widths)"}};
    doc["before"] = errors_json(before);
    doc["refine_pose"] = errors_json(ours);
    doc["refine_pose"]["bands_A"] = po.bands;
    doc["refine_pose"]["search"] = search;
    doc["refine_pose"]["loss"] = loss;
    doc["refine_pose"]["ring_weights"] = r.ring_weights;
    doc["refine_pose"]["iterations"] = po.iterations;
    doc["refine_pose"]["seconds"] = t_refine;
    doc["refine_pose"]["cpu_seconds"] = cpu_refine;
    doc["refine_pose"]["cpu_seconds_per_particle"] = cpu_refine / o.count;
    doc["targets"] = {{"rms_angle_deg", 1.0}, {"rms_shift_px", 0.5}};

    if (relion_count > 0) {
      std::fflush(stdout);
      // The first relion_count particles, one iteration of relion_refine's local search given the true map, by
      // maximum likelihood: sigma_ang = the STAR error per axis (the search covers +-3 sigma), healpix order
      // --relion-healpix oversampled once, one run per order (order 6: 0.94 degrees, then 0.47 around the
      // likely poses), offsets +-3x the shift error on a 0.5 px grid (0.25 px oversampled), the band to
      // refine-pose's finest, the mask nearly the box. The map is on the particles' grey scale (relion_project of it at the true poses is the
      // noise-free image times the particle's scale: test_simulate_truth) and it is CTF-free, which relion
      // calls "CTF-corrected": without --ctf_corrected_ref relion's first iteration takes the reference as
      // CTF-modulated already and compares the images with projections WITHOUT the CTF (ml_optimiser.cpp:
      // refs_are_ctf_corrected), which moved the poses away from the truth (6.05 degrees, 2.97 px; from the
      // true poses 6.02 degrees). One iteration: a second would reconstruct from these noisy particles instead
      // of using the true map; the grid spans the whole prior, so the first iteration's pose is the search's.
      const int n = std::min(relion_count, o.count);
      std::vector<size_t> keep(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) keep[size_t(i)] = size_t(i);
      io::write_particle_subset(dir + "/relion_in.star", set, keep);
      nlohmann::json runs = nlohmann::json::array();
      for (const int relion_healpix : relion_orders) {
        const std::string out_dir = "relion_h" + std::to_string(relion_healpix);
        fs::create_directories(dir + "/" + out_dir);
        const double diameter = 0.96 * o.box * o.pixel;
        char cmd[1024];
        std::snprintf(cmd, sizeof cmd,
                      "cd %s && relion_refine --i relion_in.star --o %s/run --ref true_state_001.mrc "
                      "--ini_high %g --particle_diameter %.0f %s--K 1 --iter 1 --healpix_order %d --sigma_ang %.3f "
                      "--offset_range %.1f --offset_step 0.5 --oversampling 1 --tau2_fudge 1 --zero_mask --flatten_solvent "
                      "--pad 2 --j 2 --dont_combine_weights_via_disc --dont_check_norm > %s/log.txt 2>&1",
                      dir.c_str(), out_dir.c_str(), po.bands.back(), diameter, o.ctf ? "--ctf --ctf_corrected_ref " : "",
                      relion_healpix, o.pose_error_deg / std::sqrt(3.0), std::max(2.0, 3 * o.shift_error_px),
                      out_dir.c_str());
        t0 = std::chrono::steady_clock::now();
        const double child0 = children_cpu_seconds();
        const int rc = std::system(cmd);
        const double t_relion = seconds_since(t0), cpu_relion = children_cpu_seconds() - child0;
        nlohmann::json rj = {{"command", cmd}, {"particles", n}, {"healpix_order", relion_healpix},
                             {"seconds", t_relion}, {"cpu_seconds", cpu_relion},
                             {"cpu_seconds_per_particle", cpu_relion / n}, {"exit", rc}};
        if (rc == 0) {
          io::ParticleSet sub = io::read_particles(dir + "/relion_in.star");
          const std::vector<ParticlePose> rel = poses_from_file(sub, dir + "/" + out_dir + "/run_it001_data.star", dir);
          const PoseErrors re = pose_errors(sys, o, rel);  // the subset's particles are the first n
          std::vector<ParticlePose> ours_n(after.begin(), after.begin() + n), before_n;
          for (int i = 0; i < n; ++i) before_n.push_back(poses_of(set)[size_t(i)]);
          rj["before"] = errors_json(pose_errors(sys, o, before_n));
          rj["relion"] = errors_json(re);
          rj["refine_pose_same_particles"] = errors_json(pose_errors(sys, o, ours_n));
          std::printf("relion_refine (1 iteration of local search, healpix order %d, true map, %d particles): %.3f "
                      "degrees, %.3f px RMS (refine-pose on them: %.3f, %.3f); %.1f s, %.1f CPU-s\n",
                      relion_healpix, n, re.deg, re.px, rj["refine_pose_same_particles"]["rms_angle_deg"].get<double>(),
                      rj["refine_pose_same_particles"]["rms_shift_px"].get<double>(), t_relion, cpu_relion);
        } else {
          std::printf("relion_refine failed (exit %d): see %s/%s/log.txt\n", rc, dir.c_str(), out_dir.c_str());
        }
        runs.push_back(rj);
        doc["relion_refine"] = runs;
        bench::write_json(out, doc);  // each run as it ends: the finer orders take long
      }
    }
    if (relion_count <= 0) bench::write_json(out, doc);
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_refine_pose: %s\n", e.what());
    return 1;
  }
}
