// engine/simulate.h: what the STAR file says about the simulated images must be true of them.
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>

#include "core/error.h"
#include "engine/example_model.h"
#include "engine/simulate.h"
#include "io/particles.h"
#include "support.h"

using namespace cugmm;

TEST_CASE("simulate: defocus values are written exactly when the images carry a CTF") {
  const ExampleMolecule mol = make_example_molecule(32, 4.0);
  for (bool ctf : {true, false}) {
    CAPTURE(ctf);
    SimulationOptions o;
    o.count = 3;
    o.snr = 0;
    o.ctf = ctf;
    const std::string dir = test::scratch_dir(ctf ? "simulate_ctf" : "simulate_no_ctf");
    SimulatedParticles sim = simulate_particles({mol.open}, o, dir);
    io::ParticleSet set = io::read_particles(sim.star, "");
    REQUIRE(set.particles.size() == 3);
    // Readers take rlnDefocusU as "these images carry a CTF": score would model one, reconstruct correct one.
    CHECK(set.has_ctf == ctf);
    if (ctf) CHECK(set.particles[0].ctf.defocus_u >= o.defocus_min);
    CHECK(set.particles[2].image_file == set.particles[0].image_file);
    CHECK(set.particles[2].index == 2);
  }
}

TEST_CASE("simulate: options that make no sense are errors, and nothing is written outside the directory") {
  const ExampleMolecule mol = make_example_molecule(32, 4.0);
  auto refused = [&](SimulationOptions o, const std::string& name, const char* says) {
    CAPTURE(says);
    CHECK_THROWS_WITH_AS(check_simulation_options(o, 32, name), doctest::Contains(says), Error);
  };
  SimulationOptions o;
  CHECK_NOTHROW(check_simulation_options(o, 32, "particles"));
  o.snr = -1;
  refused(o, "p", "--snr");
  o.snr = std::nan("");
  refused(o, "p", "--snr");
  o = SimulationOptions{};
  o.defocus_min = 30000;
  o.defocus_max = 8000;
  refused(o, "p", "above --defocus-max");
  o = SimulationOptions{};
  o.max_shift = 1e12;
  refused(o, "p", "--max-shift");
  o = SimulationOptions{};
  o.count = 0;
  refused(o, "p", "--count");
  o.count = 2'000'000'000;  // 8 TB of 32 px images: refused before any allocation
  refused(o, "p", "needs");
  o = SimulationOptions{};
  for (const char* bad : {"../../escaped", "..", "a/b", ""}) refused(o, bad, "plain file name");

  const std::string dir = test::scratch_dir("simulate_escape");
  o.count = 2;
  CHECK_THROWS_AS(simulate_particles({mol.open}, o, dir + "/out", "../escaped"), Error);
  CHECK_FALSE(std::filesystem::exists(dir + "/escaped.star"));
  CHECK_FALSE(std::filesystem::exists(dir + "/out"));
}
