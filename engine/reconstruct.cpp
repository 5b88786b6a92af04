#include "engine/reconstruct.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <tuple>

#include "core/error.h"
#include "engine/fft.h"
#include "core/log.h"
#include "io/image_read.h"
#include "kernels/backproject.h"

namespace cugmm {

#ifdef CUGMM_HAVE_CUDA
// engine/reconstruct_cuda.cu
std::unique_ptr<Backprojector> make_cuda_backprojector(Context& cx, int box, double pixel_size,
                                                      const ReconstructOptions& opt);
#endif

void FourierGrid::add(const FourierGrid& o) {
  CUGMM_REQUIRE(o.np == np && o.data.size() == data.size(), "FourierGrid::add: grids of different geometry");
  for (size_t i = 0; i < data.size(); ++i) {
    data[i] += o.data[i];
    weight[i] += o.weight[i];
  }
}

void check_reconstruct_options(const ReconstructOptions& opt, int box, double pixel_size) {
  if (opt.padding < 1 || opt.padding > 4) throw Error("--padding must be 1..4, not " + std::to_string(opt.padding));
  if (!std::isfinite(opt.wiener_tau) || opt.wiener_tau <= 0)
    throw Error("--wiener-tau must be a finite number > 0 (it regularises the division by the weights), not " +
                std::to_string(opt.wiener_tau));
  if (!std::isfinite(opt.maxres) || opt.maxres < 0)
    throw Error("--maxres must be a finite number of Å >= 0 (0: Nyquist), not " + std::to_string(opt.maxres));
  if (opt.maxres > 0 && box > 0 && pixel_size > 0 && box * pixel_size / opt.maxres < kMinShells) {
    char m[256];
    std::snprintf(m, sizeof m, "--maxres %g Å keeps fewer than %g Fourier shells of a %d px box at %g Å/px: at "
                  "most %g Å", opt.maxres, kMinShells, box, pixel_size, box * pixel_size / kMinShells);
    throw Error(m);
  }
}

void check_mask(const std::vector<float>& mask, const std::string& what) {
  double sum = 0;
  for (float v : mask) {
    if (!std::isfinite(v) || v < 0 || v > 1) throw Error(what + ": mask values must be finite and in [0, 1]");
    sum += v;
  }
  if (!(sum > 0)) throw Error(what + ": the mask is zero everywhere (nothing would be compared)");
}

void check_sphere_mask(double radius_A, double edge_A, int box, double pixel_size) {
  if (!std::isfinite(radius_A) || !std::isfinite(edge_A) || edge_A < 0)
    throw Error("--mask-radius and --mask-edge must be finite, the edge >= 0");
  if (radius_A < 2 * pixel_size)
    throw Error("--mask-radius " + std::to_string(radius_A) + " Å is under 2 pixels (" + std::to_string(2 * pixel_size) +
                " Å): the masked FSC would compare a few voxels");
  if (radius_A > box * pixel_size)
    throw Error("--mask-radius " + std::to_string(radius_A) + " Å is beyond the box (" +
                std::to_string(box * pixel_size) + " Å)");
}

void require_distinct_particles(const io::ParticleSet& set, const std::vector<size_t>& rows) {
  std::vector<std::pair<const std::string*, long>> seen;
  std::vector<size_t> sorted(rows);
  std::sort(sorted.begin(), sorted.end());
  for (size_t i = 1; i < sorted.size(); ++i)
    if (sorted[i] == sorted[i - 1])
      throw InputError(set.source, "row " + std::to_string(sorted[i]),
                       "selected twice: a particle may not be in both halves (the FSC would be overstated)");
  std::vector<size_t> by_image(rows);
  auto key = [&](size_t r) { return std::tie(set.particles[r].image_file, set.particles[r].index); };
  std::sort(by_image.begin(), by_image.end(), [&](size_t a, size_t b) { return key(a) < key(b); });
  for (size_t i = 1; i < by_image.size(); ++i)
    if (key(by_image[i]) == key(by_image[i - 1]))
      throw InputError(set.source, "rows " + std::to_string(by_image[i - 1]) + " and " + std::to_string(by_image[i]),
                       "name the same image (" + std::to_string(set.particles[by_image[i]].index + 1) + "@" +
                           set.particles[by_image[i]].image_file +
                           "): a particle may not be in both halves (the FSC would be overstated)");
}

double insertion_radius(int box, double pixel_size, const ReconstructOptions& opt) {
  double r = box / 2.0;
  if (opt.maxres > 0) r = std::min(r, box * pixel_size / opt.maxres);
  return opt.padding * r;
}

namespace {

class CpuBackprojector final : public Backprojector {
 public:
  CpuBackprojector(int box, double pixel_size, const ReconstructOptions& opt) : opt_(opt) {
    CUGMM_REQUIRE(box >= 4 && box % 2 == 0, "reconstruct: the box must be even and >= 4, not " + std::to_string(box));
    CUGMM_REQUIRE(opt.padding >= 1 && opt.padding <= 4, "reconstruct: padding must be 1..4");
    CUGMM_REQUIRE(pixel_size > 0, "reconstruct: the pixel size must be positive");
    g_.box = box;
    g_.padding = opt.padding;
    g_.np = box * opt.padding;
    g_.pixel_size = pixel_size;
    g_.r_max = insertion_radius(box, pixel_size, opt);
    acc_.assign(size_t(g_.np) * g_.np * (g_.np / 2 + 1), Voxel{0.f, 0.f, 0.f});
    // The image coefficients that are inserted, in half-plane memory order.
    const int np = g_.np, h = np / 2;
    for (int row = 0; row < np; ++row)
      for (int kx = 0; kx <= h; ++kx) {
        int ky = signed_freq(row, np);
        if (!coefficient_inserted(kx, ky, float(g_.r_max))) continue;
        kx_.push_back(kx);
        ky_.push_back(ky);
        fft_index_.push_back(row * (h + 1) + kx);
      }
  }

  void insert(const float* images, const ImagePose* poses, size_t n) override {
    for (size_t first = 0; first < n; first += kChunk) {
      size_t m = std::min(kChunk, n - first);
      transform(images + first * size_t(g_.box) * g_.box, poses + first, m);
      accumulate(poses + first, m);
      inserted_ += m;
    }
  }

  FourierGrid grid() const override {
    FourierGrid g = g_;
    g.data.resize(acc_.size());
    g.weight.resize(acc_.size());
    for (size_t i = 0; i < acc_.size(); ++i) {
      g.data[i] = cfloat(acc_[i].re, acc_[i].im);
      g.weight[i] = acc_[i].w;
    }
    return g;
  }

 private:
  // Enough images per pass that the slab threads have work; the term buffer stays ~10-100 MB.
  static constexpr size_t kChunk = 32;

  // Pass 1, parallel over images: pad, FFT, and the CTF-weighted, origin-shifted terms.
  void transform(const float* images, const ImagePose* poses, size_t m) {
    const int n = g_.box, np = g_.np;
    const size_t nc = kx_.size();
    terms_.resize(m * nc);
    const float inv_len = float(1 / (np * g_.pixel_size));
    int bad = -1;
#pragma omp parallel
    {
      std::vector<float> pad(size_t(np) * np);
      std::vector<cfloat> ft(size_t(np) * (np / 2 + 1));
#pragma omp for schedule(dynamic)
      for (long i = 0; i < long(m); ++i) {
        const float* im = images + size_t(i) * n * n;
        std::fill(pad.begin(), pad.end(), 0.f);
        bool finite = true;
        for (int y = 0; y < n; ++y) {
          float* dst = pad.data() + size_t(pad_index(y, n, np)) * np;
          for (int x = 0; x < n; ++x) {
            float v = im[size_t(y) * n + x];
            finite = finite && std::isfinite(v);
            dst[pad_index(x, n, np)] = v;
          }
        }
        if (!finite) {
#pragma omp critical
          bad = int(i);
          continue;
        }
        fft2_r2c(np, np, pad.data(), ft.data());
        CtfConsts<float> c = make_ctf_consts<float>(poses[i].ctf);
        float ox = float(poses[i].origin_x), oy = float(poses[i].origin_y);
        BackprojectTerm<float>* t = terms_.data() + size_t(i) * nc;
        for (size_t j = 0; j < nc; ++j) {
          cfloat f = ft[fft_index_[j]];
          t[j] = backproject_term(f.real(), f.imag(), kx_[j] * inv_len, ky_[j] * inv_len, ox, oy, c, opt_.ctf);
        }
      }
    }
    if (bad >= 0) CUGMM_FAIL("reconstruct: image " + std::to_string(inserted_ + bad) + " has a non-finite pixel");
  }

  // Pass 2: each thread owns a slab of z planes and adds every image's terms that land there, in image
  // order: the same sums in the same order for any thread count.
  void accumulate(const ImagePose* poses, size_t m) {
    const int np = g_.np;
    const size_t nc = kx_.size();
#pragma omp parallel
    {
      int nt = omp_get_num_threads(), t = omp_get_thread_num();
      int z_lo = int(long(np) * t / nt), z_hi = int(long(np) * (t + 1) / nt);
      for (size_t i = 0; i < m; ++i) {
        Mat3<double> ad = euler_to_matrix(poses[i].rot, poses[i].tilt, poses[i].psi);
        Mat3<float> a;
        for (int k = 0; k < 9; ++k) a.m[k] = float(ad.m[k]);
        const BackprojectTerm<float>* tt = terms_.data() + i * nc;
        for (size_t j = 0; j < nc; ++j) {
          GridSpot<float> s = grid_spot(a, float(kx_[j]), float(ky_[j]));
          const float rho = density_weight<float>(kx_[j], ky_[j]);
          for (int dz = 0; dz < 2; ++dz) {
            int z = s.z0 + dz, zi = z < 0 ? z + np : z;
            if (zi < z_lo || zi >= z_hi) continue;
            for (int dy = 0; dy < 2; ++dy)
              for (int dx = 0; dx < 2; ++dx) {
                int x = s.x0 + dx, y = s.y0 + dy;
                if (!corner_in_grid(x, y, z, np)) continue;
                float w = rho * corner_weight(s, dx, dy, dz);
                Voxel& v = acc_[size_t(grid_index(x, y, z, np))];
                v.re += w * tt[j].re;
                v.im += w * (s.conj ? -tt[j].im : tt[j].im);
                v.w += w * tt[j].w;
              }
          }
        }
      }
    }
  }

  // Data and weight side by side: the scattered adds touch half as many cache lines as two arrays would
  // (the accumulation is bound by memory latency).
  struct Voxel {
    float re, im, w;
  };
  ReconstructOptions opt_;
  FourierGrid g_;  // geometry only; the sums live in acc_
  std::vector<Voxel> acc_;
  std::vector<int> kx_, ky_, fft_index_;
  std::vector<BackprojectTerm<float>> terms_;
};

}  // namespace

std::unique_ptr<Backprojector> Backprojector::create(Context& cx, int box, double pixel_size,
                                                     const ReconstructOptions& opt) {
  if (cx.device() == Device::cpu) return std::make_unique<CpuBackprojector>(box, pixel_size, opt);
#ifdef CUGMM_HAVE_CUDA
  return make_cuda_backprojector(cx, box, pixel_size, opt);
#else
  CUGMM_FAIL("reconstruct: this build has no CUDA backend");
#endif
}

std::vector<float> solve(FourierGrid grid, double wiener_tau) {
  const int n = grid.box, np = grid.np, h = np / 2, nxh = h + 1;
  const size_t total = size_t(np) * np * nxh;
  CUGMM_REQUIRE(grid.data.size() == total && grid.weight.size() == total, "solve: the grid is incomplete");
  std::vector<cfloat> f = std::move(grid.data);
  std::vector<float> w = std::move(grid.weight);

  // Only one of each Hermitian pair on the x = 0 plane received the trilinear share of samples that were
  // mirrored to x >= 0: both get the sum.
  for (int z = -h + 1; z < h; ++z)
    for (int y = -h + 1; y < h; ++y) {
      long i = grid_index(0, y, z, np), j = grid_index(0, -y, -z, np);
      if (i > j) continue;
      cfloat d = f[i] + std::conj(f[j]);
      float s = w[i] + w[j];
      f[i] = d; f[j] = std::conj(d);
      w[i] = w[j] = s;
    }

  // Shell means of the weight, in shells of the original box's pixels.
  const int nshell = n / 2 + 2;
  std::vector<double> wsum(nshell, 0);
  std::vector<long> wcount(nshell, 0);
  auto shell_of = [&](int x, int y, int z, double& r) {
    r = std::sqrt(double(x * x + y * y + z * z));
    return std::min(nshell - 1, int(std::lround(r / grid.padding)));
  };
  for (int zi = 0; zi < np; ++zi)
    for (int yi = 0; yi < np; ++yi)
      for (int x = 0; x <= h; ++x) {
        double r;
        int s = shell_of(x, signed_freq(yi, np), signed_freq(zi, np), r);
        if (r > grid.r_max) continue;
        size_t i = (size_t(zi) * np + yi) * nxh + x;
        wsum[s] += w[i];
        wcount[s] += 1;
      }
  std::vector<float> tau(nshell, 0);
  for (int s = 0; s < nshell; ++s) tau[s] = wcount[s] ? float(wiener_tau * wsum[s] / wcount[s]) : 0.f;

#pragma omp parallel for
  for (int zi = 0; zi < np; ++zi)
    for (int yi = 0; yi < np; ++yi)
      for (int x = 0; x <= h; ++x) {
        double r;
        int s = shell_of(x, signed_freq(yi, np), signed_freq(zi, np), r);
        size_t i = (size_t(zi) * np + yi) * nxh + x;
        float den = w[i] + tau[s];
        f[i] = (r <= grid.r_max && den > 0) ? f[i] / den : cfloat(0, 0);
      }
  w.clear();
  w.shrink_to_fit();

  std::vector<float> padded(size_t(np) * np * np);
  fft3_c2r(np, np, np, f.data(), padded.data());
  f.clear();
  f.shrink_to_fit();

  // The grid held the DFT of the padded volume; the unnormalised inverse multiplies by np^3.
  const double scale = 1.0 / (double(np) * np * np);
  std::vector<float> vol(size_t(n) * n * n);
#pragma omp parallel for
  for (int z = 0; z < n; ++z)
    for (int y = 0; y < n; ++y)
      for (int x = 0; x < n; ++x) {
        size_t src = (size_t(pad_index(z, n, np)) * np + pad_index(y, n, np)) * np + pad_index(x, n, np);
        double g = gridding_factor<double>(x - n / 2, y - n / 2, z - n / 2, np);
        vol[(size_t(z) * n + y) * n + x] = float(padded[src] * scale / g);
      }
  return vol;
}

std::vector<int> split_halves(const std::vector<int>& random_subset) {
  bool given = !random_subset.empty() &&
               std::all_of(random_subset.begin(), random_subset.end(), [](int v) { return v == 1 || v == 2; });
  std::vector<int> half(random_subset.size());
  for (size_t i = 0; i < half.size(); ++i) half[i] = given ? random_subset[i] : int(i % 2) + 1;
  return half;
}

}  // namespace cugmm

namespace cugmm {

HalfMaps reconstruct_halves(const io::ParticleSet& set, const std::vector<size_t>& rows, Device device,
                            const ReconstructOptions& opt_in) {
  CUGMM_REQUIRE(!rows.empty(), "reconstruct: no particles selected");
  for (size_t r : rows)
    CUGMM_REQUIRE(r < set.particles.size(), "reconstruct: row " + std::to_string(r) + " is past the end");
  require_distinct_particles(set, rows);
  HalfMaps out;
  ReconstructOptions opt = opt_in;
  // One grid for the whole subset: box and pixel size must agree (optics groups are not resampled here).
  const io::OpticsGroup& g0 = set.optics.at(size_t(set.particles.at(rows[0]).optics));
  bool flipped = g0.phase_flipped;
  for (size_t r : rows) {
    CUGMM_REQUIRE(r < set.particles.size(), "reconstruct: row " + std::to_string(r) + " is past the end");
    const io::OpticsGroup& g = set.optics.at(size_t(set.particles[r].optics));
    if (g.box_size != g0.box_size || std::fabs(g.pixel_size - g0.pixel_size) > 1e-6 * g0.pixel_size)
      throw InputError(set.source, "optics group " + g.name,
                       "reconstruct needs one box and pixel size; groups '" + g0.name + "' and '" + g.name + "' differ");
    CUGMM_REQUIRE(g.phase_flipped == flipped, "reconstruct: the subset mixes phase-flipped and raw optics groups");
  }
  if (opt.ctf != CtfMode::none) {
    if (!set.has_ctf) {
      log_warn("reconstruct: " + set.source + " has no defocus values: no CTF correction");
      opt.ctf = CtfMode::none;
    } else {
      opt.ctf = flipped ? CtfMode::phase_flipped : CtfMode::full;
    }
  }
  const int n = g0.box_size;
  check_reconstruct_options(opt, n, g0.pixel_size);
  out.box = n;
  out.pixel_size = g0.pixel_size;
  out.ctf = opt.ctf;

  std::vector<int> subset(rows.size());
  for (size_t i = 0; i < rows.size(); ++i) subset[i] = set.particles[rows[i]].random_subset;
  std::vector<int> half = split_halves(subset);
  // An empty half gives a zero half-map and an FSC of 0 that would be written out as a result (e.g. a
  // subset chosen by rlnRandomSubset = 1 leaves half 2 empty).
  for (int h : {1, 2})
    if (std::count(half.begin(), half.end(), h) == 0)
      throw InputError(set.source, "", "reconstruct: half " + std::to_string(h) + " of the " +
                                           std::to_string(rows.size()) +
                                           " selected particles is empty (rlnRandomSubset puts them all in half " +
                                           std::to_string(3 - h) + ", or fewer than 2 particles): no half-maps or FSC");
  // This call is the run: its one Context, which the back-projectors queue on (declared first: outlives them).
  Context cx(device);
  std::unique_ptr<Backprojector> bp[2] = {Backprojector::create(cx, n, out.pixel_size, opt),
                                          Backprojector::create(cx, n, out.pixel_size, opt)};

  std::map<std::string, std::unique_ptr<io::ImageStack>> stacks;
  const size_t batch = 256;
  std::vector<float> ims[2];
  std::vector<ImagePose> poses[2];
  Progress progress("back-projecting", rows.size());
  for (size_t first = 0; first < rows.size(); first += batch) {
    size_t m = std::min(batch, rows.size() - first);
    for (int h = 0; h < 2; ++h) { ims[h].clear(); poses[h].clear(); }
    for (size_t i = first; i < first + m; ++i) {
      const io::Particle& p = set.particles[rows[i]];
      auto& st = stacks[p.image_file];
      if (!st) st = std::make_unique<io::ImageStack>(p.image_file);
      if (st->nx() != n || st->ny() != n)
        throw InputError(p.image_file, "", "images are " + std::to_string(st->nx()) + "x" + std::to_string(st->ny()) +
                                               ", the optics group says " + std::to_string(n));
      int h = half[i] - 1;
      size_t off = ims[h].size();
      ims[h].resize(off + size_t(n) * n);
      st->read_section(p.index, ims[h].data() + off);
      ImagePose q;
      q.rot = p.rot; q.tilt = p.tilt; q.psi = p.psi;
      q.origin_x = p.origin_x; q.origin_y = p.origin_y;
      q.ctf = p.ctf;
      poses[h].push_back(q);
    }
    for (int h = 0; h < 2; ++h) bp[h]->insert(ims[h].data(), poses[h].data(), poses[h].size());
    progress.add(m);
  }
  progress.finish();
  out.count[0] = bp[0]->inserted();
  out.count[1] = bp[1]->inserted();

  FourierGrid g1 = bp[0]->grid();
  bp[0].reset();
  FourierGrid g2 = bp[1]->grid();
  bp[1].reset();
  out.half1 = solve(g1, opt.wiener_tau);
  g1.add(g2);
  out.half2 = solve(std::move(g2), opt.wiener_tau);
  out.full = solve(std::move(g1), opt.wiener_tau);
  return out;
}

}  // namespace cugmm
