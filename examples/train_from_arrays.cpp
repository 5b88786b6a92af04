// A program that uses cugmm as a library (API.md): the built-in example made in memory, imported from
// arrays (images, poses, CTFs), trained, its particles embedded, and a latent point decoded to Gaussians and
// a density map. Build against an installed cugmm:  cmake -S examples -B build-ex -DCMAKE_PREFIX_PATH=PREFIX
// Run:  build-ex/train_from_arrays WORK_DIR [cpu|cuda|auto]
#include <cugmm/cugmm.h>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s WORK_DIR [cpu|cuda|auto]\n", argv[0]);
    return 2;
  }
  const std::string dir = argv[1];
  try {
    std::printf("cugmm %s (headers %s)\n", cugmm::version(), CUGMM_VERSION_STRING);
    cugmm::EngineOptions options;
    options.device = argc > 2 ? argv[2] : "auto";
    int last_percent = -10;
    options.progress = [&](const cugmm::ProgressInfo& p) {
      const int percent = p.total ? int(100 * p.done / p.total) : 100;
      if (percent >= last_percent + 25 || p.done == p.total) {
        std::printf("  %s %zu/%zu %s\n", p.stage.c_str(), p.done, p.total, p.detail.c_str());
        last_percent = p.done == p.total ? -10 : percent;
      }
      return true;  // false would cancel
    };
    cugmm::Engine engine(options);
    std::printf("device: %s\n", engine.device().c_str());

    // The caller's data: here the built-in example, 300 particles of two conformations on a 32-pixel grid.
    cugmm::ExampleSettings es;
    es.count = 300;
    es.box = 32;
    es.pixel_size = 6.0;
    const cugmm::ExampleData data = engine.make_example(es);
    const cugmm::Particles particles = engine.import_particles(data.arrays(), dir + "/particles");

    cugmm::TrainSettings settings;  // `cugmm train`'s defaults, made small for a quick example
    settings.latent = 2;
    settings.hidden = 64;
    settings.epochs = 3;
    settings.batch = 32;
    settings.lr = 1e-3f;
    const cugmm::Run run = engine.train(particles, data.neutral, settings, dir + "/run");
    std::printf("trained: %zu epochs, last loss %.4f\n", run.history().size(), run.history().back().train_loss);

    const cugmm::Embedding e = engine.embed(run, particles, dir + "/embedded");
    std::printf("embedded %zu particles; particle 1 at (%.3f, %.3f)\n", e.score.size(), e.latent[0], e.latent[1]);

    const std::vector<float> point = {e.latent[0], e.latent[1]};
    const cugmm::Gaussians g = engine.decode(run, point).at(0);
    const cugmm::Volume map = engine.decode_map(run, point);
    engine.save_model(dir + "/point.txt", g);
    std::printf("decoded: %zu Gaussians, a %d^3 map at %.1f A/px\n", g.size(), map.box, map.pixel_size);
    return g.size() == data.neutral.size() && map.data.size() == size_t(map.box) * map.box * map.box ? 0 : 1;
  } catch (const cugmm::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
