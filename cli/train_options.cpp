#include "cli/train_options.h"

#include <algorithm>
#include <cstdlib>

#include "cli/limits.h"
#include "core/error.h"
#include "engine/api/workflows.h"
#include "engine/gaussian_mask.h"
#include "engine/noise_features.h"

namespace cugmm::cli {

TrainOptions::TrainOptions()
    : lr(config.lr), lr_half_life(config.lr_half_life), noise(config.noise), reg_width(config.reg_width), reg_mass(config.reg_mass),
      dropout(config.dropout), explode(config.explode), latent_reg(config.latent_reg),
      input_dropout(config.input_dropout) {}

void TrainOptions::declare(Command& c) {
  TrainConfig& cfg = config;
  c.text("--root", cache.root, "directory that relative image paths are relative to");
  c.integer("--latent", cfg.latent, "latent dimensions", 1, 64);
  c.text("--move", move, "what may move: any of positions,amplitudes,widths");
  c.text("--mask", mask, "only Gaussians whose centre is inside this mask (MRC on the model's grid) move");
  c.text("--gaussians", gaussians, "only these Gaussians move: 0-based indices and ranges, e.g. 0-99,150");
  c.text("--sym", sym, "symmetry expansion: C1 (none), Cn, Dn, T, O, I, I1-I4 (RELION's operators): each particle "
                       "counts once per operator and only the first asymmetric unit moves (unless --mask/--gaussians)");
  c.integer("--epochs", cfg.epochs, "training epochs", 1, 100000);
  c.integer("--batch", cfg.batch, "particles per step", 2, 4096);
  c.number("--minres", cfg.minres, "lowest resolution in the loss, Å (0: from ring 1)", 0, 1e4);
  c.number("--maxres", cfg.maxres, "highest resolution in the loss and the cache, Å (0: Nyquist)", 0, 1e4);
  c.integer("--box", cache.box, "train on particles Fourier-cropped to this box (0: their own)", 0, kMaxBox);
  c.integer("--seed", seed, "random seed (networks, noise, batch order)", 0, (1ll << 62));
  c.number("--val-fraction", cfg.val_fraction, "fraction of particles held out for validation", 0, 0.5);
  c.text("--preset", preset, "paper: the published e2gmm recipe (plain FRC, ReLU, lr 1e-4, latent noise 0.1, "
                             "mass regulariser 1), the baseline the defaults are measured against");
  c.number("--lr", lr, "Adam learning rate", 0, 1, true);
  c.number("--lr-half-life", lr_half_life, "the learning rate halves every this many epochs (0: constant, the paper's)", 0, 1e6);
  c.text("--l2", l2, "L2 coefficient of the weights, 0 to 10, or auto: min(1e-3, 6 / training particles), the "
                    "paper's 1e-3 up to 6,000 particles and less above (a prior's weight against the data falls "
                    "as 1/N; docs/accuracy.md round 14)")
      ->check(CLI::IsMember({"auto"}) | number_in(0, 10));
  c.number("--noise", noise, "standard deviation of the latent noise", 0, 10);
  c.number("--reg-width", reg_width, "weight of the mean-width regulariser", 0, 1e6);
  c.number("--reg-mass", reg_mass, "weight of the total-mass regulariser", 0, 1e6);
  c.number("--latent-reg", latent_reg, "weight of a |z|^2 penalty on the encoder's output (0: none, the paper's)", 0, 1e6);
  c.number("--dropout", dropout, "encoder dropout probability", 0, 0.9);
  c.text("--loss", loss, "white (the default): one correlation over the band, every coefficient weighted by its ring's "
                         "measured inverse noise variance (kernels/frc.h pooled_sums); gain: the same with the "
                         "neutral model times its measured per-ring gain (engine/ring_weights.h; docs/accuracy.md "
                         "round 7b); "
                         "snr: FRC rings weighted by their measured signal (engine/ring_weights.h); frc: the plain "
                         "mean over rings (the paper's)");
  c.integer("--coarse-epochs", cfg.coarse_epochs, "epochs scored on the coarse band first (0: none)", 0, 100000);
  c.number("--coarse-res", cfg.coarse_res, "the coarse band's finest resolution, Å", 0, 1e4, true);
  c.number("--position-unit", cfg.position_unit, "what a decoder output of 1 moves a centre by, Å (0: one pixel, the paper's)", 0,
           1e3);
  c.integer("--positions-first", cfg.positions_first,
            "epochs in which only the positions move, then every kind --move allows (0: all from the start)", 0,
            100000);
  c.text("--rigid", rigid, "remove: the six rigid-body modes taken out of the decoder's positions (the latent cannot "
                           "learn pose error; every Gaussian must be movable); keep: not");
  c.flag("--no-align-shifts", no_align_shifts, "keep the particles' shifts as given (default: each particle's two shifts "
                                               "aligned to the neutral model before the features; not with --poses-from)");
  c.integer("--feature-pca", cfg.feature_pca, "the encoder reads the top K components of the features, ranked by "
                                              "signal-to-noise unless --feature-whiten none (fitted on the training "
                                              "particles; 0: all 5G features, the input before docs/accuracy.md "
                                              "round 9)", 0, 1000000);
  c.flag("--feature-pca-whiten", cfg.feature_pca_whiten, "with --feature-pca: every component's scores scaled to "
                                                         "unit variance");
  c.text("--feature-whiten", feature_whiten, "with --feature-pca: noise ranks the components by signal-to-noise "
                                             "(the noise covariance from the features of noise-only images with the "
                                             "data's noise spectrum; docs/accuracy.md round 7c) instead of variance "
                                             "(none); noise+view (the default): the same with the features' "
                                             "view-dependent mean counted as noise (round 9). Not given, a model "
                                             "too small for the components falls back to all 5G "
                                             "features (logged; run.json feature_fallback)");
  c.text("--feature-whiten-solver", cfg.feature_noise_solver, "with --feature-whiten noise: auto (dense up to 5G = "
                                 "2,000, streamed above), dense (5G up to 8,000) or streamed (any G; docs/accuracy.md round 7d)");
  c.flag("--feature-row-rms", cfg.feature_row_rms, "each particle's feature row scaled to unit RMS before the encoder "
                                                   "(and before --feature-pca)");
  c.number("--input-dropout", input_dropout, "dropout probability on the encoder's input", 0, 0.9);
  c.text("--encoder-reads", encoder_reads, "which parameter kinds' feature columns the encoder reads: any of "
                                          "positions,amplitudes,widths (the others enter as zeros; not with "
                                          "--feature-pca; docs/accuracy.md round 8)");
  c.flag("--feature-split", cfg.feature_split, "the features from half of each particle's Fourier coefficients (kx + ky "
                                               "even), the score from the other half: the latent cannot gain by "
                                               "following a particle's own noise (docs/accuracy.md round 8)");
  c.integer("--warm-start", cfg.warm_start, "the first EPOCHS epochs train the decoder on each particle's top --latent "
                                            "input components (standardised) and fit the encoder to them, then end "
                                            "to end (0: none; needs --feature-pca components; docs/accuracy.md round "
                                            "10b)", 0, 100000);
  c.integer("--hidden", cfg.hidden, "width of the hidden layers", 1, 16384);
  c.integer("--depth", cfg.depth, "hidden layers per network", 1, 16);
  c.flag("--leaky", cfg.leaky, "leaky ReLU (the default)");
  c.flag("--relu", relu, "plain ReLU instead of leaky ReLU (the paper's)");
  c.flag("--bf16-moments", cfg.bf16_moments, "Adam moments in bfloat16 (half the optimiser memory)");
  c.text("--ctf", ctf, "auto (from the particle file), full, flipped (|CTF|) or none");
  c.text("--feature-precision", fprec, "fp16 or fp32 storage of the gradient features");
  c.number("--explode", explode, "a batch loss above this (the loss lies near -1..0) stops the run as diverged", -1, 1e30);
  c.integer("--loss-every", cfg.loss_every, "batches between loss read-backs", 1, 1000000);
}

void TrainOptions::finish(const Command& c) {
  TrainConfig& cfg = config;
  cfg.seed = uint64_t(seed);
  cfg.lr = float(lr); cfg.lr_half_life = float(lr_half_life); cfg.noise = float(noise); cfg.reg_width = float(reg_width);
  cfg.reg_mass = float(reg_mass); cfg.dropout = float(dropout); cfg.explode = float(explode);
  cfg.latent_reg = float(latent_reg);
  cfg.input_dropout = float(input_dropout);
  cfg.l2_auto = l2 == "auto";
  if (!cfg.l2_auto) cfg.l2 = float(std::strtod(l2.c_str(), nullptr));  // checked by number_in
  if (relu && c.app.count("--leaky") > 0) throw Error("give --relu or --leaky, not both");
  if (relu) cfg.leaky = false;
  if (no_align_shifts) cfg.align_shifts = false;
  if (!feature_whiten.empty() && feature_whiten != "noise" && feature_whiten != "noise+view" &&
      feature_whiten != "none")
    throw Error("--feature-whiten must be noise, noise+view or none, not '" + quote_value(feature_whiten) + "'");
  const bool pca_given = c.app.count("--feature-pca") > 0, whiten_given = !feature_whiten.empty();
  cfg.feature_input_asked = pca_given || whiten_given;
  if (preset == "paper" && !pca_given) cfg.feature_pca = paper_recipe().feature_pca;  // the 5G features
  if (whiten_given) {
    cfg.feature_noise_whiten = feature_whiten == "noise" || feature_whiten == "noise+view";
    cfg.feature_view_nuisance = feature_whiten == "noise+view";
  } else if (cfg.feature_pca == 0) {  // --feature-pca 0 (or the paper's input): the 5G features themselves
    cfg.feature_noise_whiten = cfg.feature_view_nuisance = false;
  }
  if (cfg.feature_pca_whiten && cfg.feature_pca == 0) throw Error("--feature-pca-whiten needs --feature-pca K");
  if (cfg.feature_noise_whiten && cfg.feature_pca == 0)
    throw Error("--feature-whiten " + feature_whiten + " needs --feature-pca K");
  parse_noise_solver(cfg.feature_noise_solver);  // refused before any work
  if (c.app.count("--feature-whiten-solver") > 0 && !cfg.feature_noise_whiten)
    throw Error("--feature-whiten-solver needs --feature-whiten noise or noise+view");
  if (!preset.empty() && preset != "paper") throw Error("--preset: unknown preset '" + quote_value(preset) + "' (paper)");
  if (!loss.empty() && loss != "white" && loss != "gain" && loss != "snr" && loss != "frc")
    throw Error("--loss must be white, gain, snr or frc, not '" + quote_value(loss) + "'");
  if (!loss.empty()) {
    cfg.pooled = loss == "white" || loss == "gain";
    cfg.radial_gain = loss == "gain";
    cfg.snr_weighted = loss == "snr";
  }
  if (!rigid.empty() && rigid != "remove" && rigid != "keep")
    throw Error("--rigid must be remove or keep, not '" + quote_value(rigid) + "'");
  if (!rigid.empty()) cfg.rigid_free = rigid == "remove";
  if (preset == "paper") {  // the published recipe (DESIGN §1): refuse a line that changes part of it
    const TrainConfig paper = paper_recipe();
    for (const char* opt : {"--lr", "--lr-half-life", "--l2", "--noise", "--dropout", "--hidden", "--depth", "--leaky", "--relu", "--latent-reg",
                            "--loss", "--coarse-epochs", "--rigid", "--positions-first", "--position-unit"})
      if (c.app.count(opt) > 0)
        throw Error(std::string("--preset paper fixes the networks, the optimiser and the loss; drop ") + opt);
    cfg.lr = paper.lr; cfg.lr_half_life = paper.lr_half_life; cfg.l2 = paper.l2; cfg.l2_auto = paper.l2_auto; cfg.noise = paper.noise; cfg.dropout = paper.dropout;
    cfg.hidden = paper.hidden; cfg.depth = paper.depth; cfg.leaky = paper.leaky; cfg.latent_reg = paper.latent_reg;
    cfg.align_shifts = paper.align_shifts;
    cfg.snr_weighted = paper.snr_weighted; cfg.pooled = paper.pooled; cfg.coarse_epochs = paper.coarse_epochs; cfg.rigid_free = paper.rigid_free;
    cfg.positions_first = paper.positions_first;
    cfg.position_unit = paper.position_unit;
    if (c.app.count("--reg-mass") == 0) cfg.reg_mass = paper.reg_mass;
    if (c.app.count("--reg-width") == 0) cfg.reg_width = paper.reg_width;
    if (c.app.count("--move") == 0) move = "positions,amplitudes,widths";  // what the paper moves
  }
  group = make_symmetry_group(sym);
  cfg.symmetry = group.name;
  parse_move_list(move, cfg);
  if (cfg.positions_first > 0 && !cfg.move_positions)
    throw Error("--positions-first " + std::to_string(cfg.positions_first) + " needs positions in --move ('" +
                quote_value(move) + "' has none)");
  const std::array<bool, 3> reads = parse_kind_list(encoder_reads, "--encoder-reads");
  cfg.encoder_reads_positions = reads[0];
  cfg.encoder_reads_amplitudes = reads[1];
  cfg.encoder_reads_widths = reads[2];
  cfg.ctf = parse_ctf_choice(ctf);
  cfg.feature_precision = parse_feature_precision(fprec);
  if (!mask.empty() && !gaussians.empty()) throw Error("give --mask or --gaussians, not both");
  if (cfg.minres > 0 && cfg.maxres > 0 && cfg.minres <= cfg.maxres)
    throw Error("--minres must be a lower resolution (more Å) than --maxres");
}

std::vector<std::string> TrainOptions::inputs() const {
  return mask.empty() ? std::vector<std::string>{} : std::vector<std::string>{mask};
}

void TrainOptions::select_gaussians(const io::GaussianModel& model) {
  if (!mask.empty()) config.movable = gaussians_in_mask(mask, model);
  if (!gaussians.empty()) config.movable = parse_gaussian_list(gaussians, int(model.size()));
  if (mask.empty() && gaussians.empty() && group.order() > 1) select_first_unit(config, model);
}

}  // namespace cugmm::cli
