// engine/simulate.h: what the STAR file says about the simulated images must be true of them.
#include <doctest/doctest.h>

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
