// The fused Gaussian projector (DESIGN §2): for a batch of particles, the model's projection in Fourier
// space with each particle's CTF, its FRC against the particle over a band of rings, the score, and exact
// gradients of the score. CONTRACT: the CLI, the cache and the training loops code against this header.
//
// Units and layouts
// - Gaussian parameters, one set = one row of 5G floats: five contiguous arrays [x(G) y(G) z(G) a(G) s(G)],
//   centre in Å from the box centre (voxel N/2), a = integrated mass, s = real-space sigma in Å.
//   A batch either shares one row (params_stride = 0) or has one row per particle (params_stride = 5G).
// - Particle data: band coefficients (engine/fourier_band.h: order, scale and phase convention), count x
//   band.size() complex floats, particle after particle.
// - The projection of particle i is P^(k) = sum_j a_j exp(-2 pi^2 s_j^2 |k|^2) exp(-2 pi i k.p_j),
//   p_j = (A c_j)_xy - o (Å), modelled as M^ = CTF(k) P^ (full CTF), |CTF(k)| P^ (phase-flipped data) or
//   P^ (CtfMode::none).
// - FRC_r = sum w Re(M^ conj D^) / max(sqrt(sum w|M^|^2 sum w|D^|^2), eps) over ring r (weights of the band);
//   score = mean of FRC_r over rings band.ring_min..band.ring_max, or, with ProjectorOptions::ring_weights,
//   sum_r v_r FRC_r (kernels/frc.h: the SNR-weighted score), or with ProjectorOptions::pooled one correlation
//   over the band, every coefficient of ring r weighted by v_r (kernels/frc.h pooled_sums). Loss = -score: every gradient
//   here is of the SCORE (negate for the loss).
// - Pose gradient, 5 floats per particle: d score / d w (3) for the local rotation A <- exp([w]x) A at
//   w = 0, then d score / d origin_x, d origin_y (Å).
//
// Band defaults (what --minres / --maxres mean when not given): minres = 100 Å (the first rings hold a
// handful of coefficients and mostly the particle's overall envelope, which the per-ring normalisation
// cannot see), maxres = 0 = Nyquist. Build the band with make_fourier_band(box, pixel, minres, maxres).
//
// Strategies (DESIGN §2), same results to ~1e-4 where s >= 1 px and |k| <= 0.8 Nyquist:
// - splat_fft: real-space splat of each Gaussian over a finite footprint, FFT, Fourier-space correction;
//   backward = the adjoint FFT then a gather over the same footprints. Cost ~ G x footprint + FFTs: the
//   fast one at full band. Beyond 0.8 Nyquist, and for s < 1 px, sampling aliases.
// - separable_fourier: the exact sum at the band coefficients through the separable factors
//   exp(-2 pi^2 s^2 kx^2 - 2 pi i kx px) exp(-2 pi^2 s^2 ky^2 - 2 pi i ky py). Cost ~ G x band: for narrow
//   bands (low maxres) or as the exact reference.
// - automatic: splat_fft on both backends, whatever the band, so CPU and GPU runs of one job compute the
//   same thing step by step (CUDA has no separable kernel; asking for separable_fourier there throws).
//   The choice costs the CPU nothing measurable: even on narrow bands the splat is the faster one there
//   (bench_projector --device cpu --strategy both --g 3200 --box 128 --maxres M, 2-core EPYC, shared
//   machine, particles/s forward+backward: ring_max 16 (M = 12 Å) splat 5,767, separable 555 at load ~2.5,
//   1,461 vs 138 at load ~7; ring_max 32 (M = 6 Å) 2,106 vs 140 at load ~7; G = 1,000 at 64 px, ring_max 8:
//   19,621 vs 1,600). The separable sum stays as the exact reference.
// The splat widens Gaussians narrower than 1.5 px by a common tau (from the narrowest width of the call,
// found on the device by the CUDA backend) and divides the widening out in Fourier space, so s >= 1 px
// stays within 1e-4 up to 0.8 Nyquist.
//
// Input bounds (both backends, one predicate: kernels/gaussian_projection.h gaussian_in_bounds): every
// parameter finite, every width within [kMinWidthPx, kMaxWidthBoxFraction x box] pixels; every view finite.
//
// Determinism: the CPU backend is bit-reproducible whatever the thread count. On CUDA the forward splat
// adds into each image with float atomics (their order varies, so results can differ in the last bits run
// to run); every reduction downstream of it is in a fixed order.
//
// Memory is O(batch x (G + pixels)) on both backends: no batch x G x pixels tensor exists anywhere.
#pragma once
#include <complex>
#include <cstddef>
#include <memory>
#include <vector>

#include "core/context.h"
#include "core/device.h"
#include "engine/fourier_band.h"
#include "kernels/ctf.h"
#include "kernels/geometry.h"

namespace cugmm {

using cfloat = std::complex<float>;

constexpr double kDefaultMinRes = 100.0;  // Å
constexpr double kDefaultMaxRes = 0.0;    // Nyquist

// Everything the projector needs to know about one particle. Plain data: copied to the device as is.
struct ParticleView {
  Mat3<float> rotation;          // RELION matrix A: a model point r lands at (A r)_xy
  float origin_x = 0, origin_y = 0;  // Å; the image is the projection translated by -origin
  CtfConsts<float> ctf{};
  CtfMode ctf_mode = CtfMode::none;
};

ParticleView make_particle_view(double rot, double tilt, double psi, double origin_x, double origin_y,
                                const CtfParams& ctf, CtfMode mode);

enum class ProjectionStrategy { automatic, splat_fft, separable_fourier };
const char* strategy_name(ProjectionStrategy s);

// Inputs of one batch. Pointers are host memory for the CPU backend, device memory for the CUDA one.
struct ProjectionBatch {
  int count = 0;
  const float* params = nullptr;  // rows of 5G (see above)
  size_t params_stride = 0;       // 0: one row shared by the batch; 5G: one row per particle
  const ParticleView* views = nullptr;  // count
  const cfloat* data = nullptr;         // count x band.size(); unused by render
};

enum class GradReduce { per_particle, sum };

// Outputs; any may be null except score. Backward work is done only for the gradients asked for.
struct ProjectionOutputs {
  float* score = nullptr;        // count
  float* frc = nullptr;          // count x band.num_rings() (rings 0..ring_max; entries below ring_min are 0)
  float* grad_params = nullptr;  // per_particle: count x 5G (same layout as params); sum: 5G
  GradReduce grad_reduce = GradReduce::per_particle;
  float* grad_pose = nullptr;    // count x 5: (w_x, w_y, w_z, origin_x, origin_y)
};

struct ProjectorOptions {
  ProjectionStrategy strategy = ProjectionStrategy::automatic;
  float frc_eps = 1e-20f;        // the FRC denominator's floor (DESIGN §2)
  int max_batch = 256;           // particles per internal chunk (CUDA workspace, CPU summed gradients);
                                 // CUDA chunks are further capped at 65,535 (a grid dimension)
  // Per ring 0..ring_max: the score's weight v_r of FRC_r (finite, >= 0, summing to > 0 over the scored
  // rings; rings below ring_min ignored; normalised to sum 1). Empty: the plain mean over the scored rings.
  std::vector<float> ring_weights{};
  // The pooled score (kernels/frc.h pooled_sums): one correlation over the band with ring_weights as the
  // per-ring coefficient weights u_r (the inverse noise variance), instead of sum_r v_r FRC_r.
  bool pooled = false;
};

// The weights a projector scores with (ProjectorOptions::ring_weights resolved): num_rings entries, 0 below
// ring_min, summing to 1. Throws cugmm::Error naming a malformed entry.
std::vector<float> score_ring_weights(const FourierBand& band, const std::vector<float>& given);

class Projector {
 public:
  virtual ~Projector() = default;
  Device device() const { return cx_.device(); }
  Context& context() const { return cx_; }
  const FourierBand& band() const { return band_; }
  int num_gaussians() const { return num_gaussians_; }
  ProjectionStrategy strategy() const { return strategy_; }

  // Forward for the whole batch, backward where gradient outputs are given. Pointers on this backend's
  // side: host memory for the CPU (the work is done on return; bad input throws cugmm::Error before any
  // work), device memory for CUDA (a host pointer there throws). On CUDA run() returns with the work
  // QUEUED on context().stream() and does not synchronise: the inputs are checked on the device (a
  // validation kernel sets DeviceFlag bits, every kernel skips a Gaussian or view that fails the check, so
  // nothing reads out of bounds), and the caller's context().synchronize() throws cugmm::Error naming what
  // was wrong; outputs of such a call are unspecified. Inputs must stay alive until then.
  virtual void run(const ProjectionBatch& in, const ProjectionOutputs& out) = 0;

  // The same with host pointers whatever the backend (copies in and out for CUDA, then synchronises the
  // context, so bad input throws here): tests and the CLI.
  virtual void run_host(const ProjectionBatch& in, const ProjectionOutputs& out) = 0;

  // Projection coefficients of each particle on the full half-plane, N rows x (N/2 + 1) columns per
  // particle (FFTW layout, fourier_band.h scale and phase convention), times the view's CTF per its mode:
  // inverse-FFT them (with that convention undone) to get images. Host pointers; in.data is unused.
  // Coefficients beyond the band's ring_max are zero.
  virtual void render_host(const ProjectionBatch& in, cfloat* halfplanes) = 0;

  // Peak bytes of workspace this projector has allocated so far (device memory for CUDA).
  virtual size_t workspace_bytes() const = 0;

 protected:
  Projector(Context& cx, const FourierBand& band, int num_gaussians, ProjectionStrategy s)
      : cx_(cx), band_(band), num_gaussians_(num_gaussians), strategy_(s) {}
  Context& cx_;
  FourierBand band_;
  int num_gaussians_;
  ProjectionStrategy strategy_;
};

// A projector for G Gaussians on `band`, on the context's device: the CPU (OpenMP over particles,
// --threads) or CUDA (throws cugmm::Error where CUDA is not available), queueing all its work on the
// context's stream. The context must outlive the projector.
std::unique_ptr<Projector> make_projector(Context& cx, const FourierBand& band, int num_gaussians,
                                          const ProjectorOptions& options = {});

}  // namespace cugmm
