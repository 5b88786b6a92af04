#include "engine/features.h"
#include "engine/training_score.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "core/memory.h"
#include "io/atomic_file.h"

namespace cugmm {

namespace {
// A feature's value after the data set's normalisation; sd 0 marks a column without information.
inline float normalised(float g, float mean, float sd) { return sd > 0 ? (g - mean) / sd : 0.f; }
}  // namespace
namespace {

constexpr char kMagic[8] = {'C', 'U', 'G', 'M', 'M', 'F', 'T', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kAlign = 4096;

struct Preamble {
  char magic[8];
  uint32_t version, precision;
  uint64_t count, width, json_len, data_offset;
  uint64_t reserved[2];
};
static_assert(sizeof(Preamble) == 64, "feature file preamble");

struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* p, size_t n) {
    const unsigned char* b = static_cast<const unsigned char*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
};

size_t elem_bytes(FeaturePrecision p) { return p == FeaturePrecision::fp16 ? 2 : 4; }

}  // namespace

uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  const uint32_t sign = (x >> 16) & 0x8000u;
  const uint32_t absx = x & 0x7fffffffu;
  if (absx >= 0x7f800000u) return uint16_t(sign | 0x7c00u | (absx > 0x7f800000u ? 0x200u : 0));  // inf / nan
  if (absx >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds beyond 65504
  if (absx < 0x38800000u) {  // subnormal half (or zero): value / 2^-24, rounded to nearest even
    float a;
    std::memcpy(&a, &absx, 4);
    return uint16_t(sign | uint32_t(std::nearbyint(a * 16777216.0f)));
  }
  const uint32_t mant = absx & 0x7fffffu;
  uint32_t h = ((absx >> 23) - 112) << 10 | (mant >> 13);
  const uint32_t rest = mant & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (h & 1))) ++h;  // carries into the exponent correctly
  return uint16_t(sign | h);
}

float half_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16, e = (h >> 10) & 0x1f, m = h & 0x3ffu;
  float f;
  if (e == 0) {
    f = float(m) * (1.0f / 16777216.0f);
    return sign ? -f : f;
  }
  const uint32_t x = e == 31 ? (sign | 0x7f800000u | (m << 13)) : (sign | ((e + 112) << 23) | (m << 13));
  std::memcpy(&f, &x, 4);
  return f;
}

FeaturePrecision parse_feature_precision(const std::string& s) {
  if (s == "fp16") return FeaturePrecision::fp16;
  if (s == "fp32") return FeaturePrecision::fp32;
  throw Error("--feature-precision must be fp16 or fp32, not '" + s + "'");
}
const char* feature_precision_name(FeaturePrecision p) { return p == FeaturePrecision::fp16 ? "fp16" : "fp32"; }

void build_feature_file(const std::string& path, Context& cx, const ParticleBatcher& batcher,
                        const std::vector<float>& neutral, const nlohmann::json& key, FeaturePrecision precision,
                        FeatureNorm& norm, const std::vector<char>& use_for_norm, int batch,
                        const std::vector<float>& ring_weights, Comm* comm, bool pooled) {
  const FourierBand& band = batcher.band();
  const size_t width = neutral.size();
  CUGMM_REQUIRE(width % 5 == 0 && width > 0, "build_feature_file: parameter row of 5G values");
  const int G = int(width / 5);
  const size_t n = key.at("count").get<size_t>();
  auto projector = make_training_projector(cx, band, ring_weights, G, pooled);
  const bool measure = norm.mean.empty();
  const int ranks = comm ? comm->size() : 1, rank = comm ? comm->rank() : 0;
  const bool split = ranks > 1;
  const auto [first_row, last_row] = rank_share(n, rank, ranks);

  // Pass 1: raw gradients; when measuring or split across ranks, they go to a raw fp32 scratch file (one
  // per rank) and the column sums are kept (double, row order: the same on every run); otherwise they are
  // normalised and written at once.
  std::vector<double> sum(measure ? width : 0), sum2(measure ? width : 0);
  auto raw_name = [&](int r) { return path + ".raw" + (split ? "." + std::to_string(r) : std::string()); };
  const std::string raw_path = raw_name(rank);
  std::FILE* raw = nullptr;
  if (measure || split) {
    raw = std::fopen(raw_path.c_str(), "w+b");
    if (!raw) throw Error("cannot create " + raw_path);
  }
  // Only the writing rank holds the output (rank 0 when split).
  std::unique_ptr<io::AtomicFile> out;
  if (rank == 0) out = std::make_unique<io::AtomicFile>(path);
  Fnv fnv;
  size_t at = 0;
  auto write = [&](const void* p, size_t bytes) {
    out->write(p, bytes);
    fnv.add(p, bytes);
    at += bytes;
  };
  auto write_header = [&] {
    nlohmann::json j;
    j["key"] = key;
    j["normalisation"] = measure ? "measured over the training particles" : "given (a trained run's)";
    const std::string js = j.dump();
    Preamble p{};
    std::memcpy(p.magic, kMagic, 8);
    p.version = kVersion;
    p.precision = uint32_t(precision);
    p.count = n;
    p.width = width;
    p.json_len = js.size();
    const size_t stats_end = sizeof(Preamble) + js.size() + 2 * width * sizeof(float);
    p.data_offset = (stats_end + kAlign - 1) / kAlign * kAlign;
    write(&p, sizeof p);
    write(js.data(), js.size());
    write(norm.mean.data(), width * sizeof(float));
    write(norm.sd.data(), width * sizeof(float));
    std::vector<char> z(p.data_offset - at, 0);
    write(z.data(), z.size());
  };
  std::vector<unsigned char> row_out(width * elem_bytes(precision));
  auto emit = [&](const float* g) {
    if (precision == FeaturePrecision::fp16) {
      uint16_t* h = reinterpret_cast<uint16_t*>(row_out.data());
      for (size_t c = 0; c < width; ++c) h[c] = float_to_half(normalised(g[c], norm.mean[c], norm.sd[c]));
    } else {
      float* f = reinterpret_cast<float*>(row_out.data());
      for (size_t c = 0; c < width; ++c) f[c] = normalised(g[c], norm.mean[c], norm.sd[c]);
    }
    write(row_out.data(), row_out.size());
  };
  if (!measure) {
    CUGMM_REQUIRE(norm.mean.size() == width && norm.sd.size() == width, "feature normalisation of another width");
    if (!split) write_header();
  }

  std::vector<size_t> idx(static_cast<size_t>(batch));
  std::vector<ParticleView> views(static_cast<size_t>(batch));
  std::vector<cfloat> data(static_cast<size_t>(batch) * band.size());
  std::vector<float> score(static_cast<size_t>(batch)), grad(size_t(batch) * width);
  size_t used = 0;
  Progress progress("features", last_row - first_row);
  for (size_t first = first_row; first < last_row; first += size_t(batch)) {
    const int m = int(std::min(size_t(batch), last_row - first));
    for (int i = 0; i < m; ++i) idx[i] = first + i;
    batcher.gather(idx.data(), m, views.data(), data.data());
    ProjectionBatch in;
    in.count = m;
    in.params = neutral.data();
    in.params_stride = 0;
    in.views = views.data();
    in.data = data.data();
    ProjectionOutputs o;
    o.score = score.data();
    o.grad_params = grad.data();
    o.grad_reduce = GradReduce::per_particle;
    projector->run_host(in, o);
    for (int i = 0; i < m; ++i) {
      const float* g = grad.data() + size_t(i) * width;
      for (size_t c = 0; c < width; ++c)
        if (!std::isfinite(g[c]))
          throw Error("the gradient feature of particle " + std::to_string(first + i) + " is not finite");
      if (measure) {
        if (use_for_norm.empty() || use_for_norm[first + i]) {
          for (size_t c = 0; c < width; ++c) {
            sum[c] += g[c];
            sum2[c] += double(g[c]) * g[c];
          }
          ++used;
        }
      } else if (!raw) {
        emit(g);
      }
    }
    if (raw && std::fwrite(grad.data(), sizeof(float), size_t(m) * width, raw) != size_t(m) * width)
      throw Error("cannot write " + raw_path + " (disk full?)");
    progress.add(size_t(m));
  }
  progress.finish();
  if (raw && std::fflush(raw) != 0) throw Error("cannot write " + raw_path + " (disk full?)");

  if (measure) {
    if (split) {  // the whole set's sums, the same on every rank
      double u = double(used);
      comm->allreduce_sum(sum.data(), width);
      comm->allreduce_sum(sum2.data(), width);
      comm->allreduce_sum(&u, 1);
      used = size_t(u);
    }
    CUGMM_REQUIRE(used > 1, "feature normalisation needs at least two particles");
    norm.mean.resize(width);
    norm.sd.resize(width);
    double sd_max = 0;
    for (size_t c = 0; c < width; ++c) {
      const double mu = sum[c] / used, var = std::max(0.0, sum2[c] / used - mu * mu);
      norm.mean[c] = float(mu);
      norm.sd[c] = float(std::sqrt(var));
      sd_max = std::max(sd_max, double(norm.sd[c]));
    }
    // A column that never varies (a Gaussian outside every band, or a constant gradient) carries no
    // information: sd 0 marks it, and its features are 0 rather than divided by ~0 (a finite marker, so
    // checkpoints, which refuse non-finite arrays, keep it).
    const float floor = float(std::max(sd_max * 1e-6, 1e-30));
    for (float& s : norm.sd) if (!(s > floor)) s = 0.f;
  }
  if (split) {
    std::fclose(raw);
    raw = nullptr;
    comm->barrier();  // every part is written
  }
  if (rank == 0 && (measure || split)) {
    write_header();
    // The parts in rank order are the particles in order (one part, this rank's, without ranks).
    for (int r = 0; r < ranks; ++r) {
      const auto [a, b] = rank_share(n, r, ranks);
      std::FILE* part = split ? std::fopen(raw_name(r).c_str(), "rb") : raw;
      if (!part)
        throw Error("rank 0 cannot open " + raw_name(r) + ", the features rank " + std::to_string(r) +
                    " computed: the run directory must be on a file system every rank shares");
      if (!split) std::rewind(part);
      for (size_t i = a; i < b; ++i) {
        if (std::fread(grad.data(), sizeof(float), width, part) != width)
          throw Error("cannot read back " + raw_name(r) + " (row " + std::to_string(i - a) + " of " +
                      std::to_string(b - a) + ")");
        emit(grad.data());
      }
      std::fclose(part);
      std::filesystem::remove(raw_name(r));
    }
    raw = nullptr;
  }
  if (rank == 0) {
    const uint64_t h = fnv.h;
    out->write(&h, sizeof h);
    out->commit();
  }
  if (split) comm->barrier();  // the file is there for every rank
}

std::string feature_file_stale_reason(const std::string& path, const nlohmann::json& key) {
  try {
    FeatureFile f(path, key);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

FeatureFile::FeatureFile(const std::string& path, const nlohmann::json& key) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw InputError(path, "", "cannot open the feature file");
  struct stat st{};
  ::fstat(fd, &st);
  map_size_ = size_t(st.st_size);
  if (map_size_ < sizeof(Preamble) + 8) {
    ::close(fd);
    throw InputError(path, "", "too short for a feature file");
  }
  void* m = ::mmap(nullptr, map_size_, PROT_READ, MAP_SHARED, fd, 0);
  ::close(fd);
  if (m == MAP_FAILED) throw InputError(path, "", "cannot map the feature file");
  map_ = static_cast<const unsigned char*>(m);
  auto fail = [&](const std::string& what) {
    ::munmap(const_cast<unsigned char*>(map_), map_size_);
    map_ = nullptr;
    throw InputError(path, "", what);
  };
  Preamble p;
  std::memcpy(&p, map_, sizeof p);
  if (std::memcmp(p.magic, kMagic, 8) != 0) fail("not a cugmm feature file");
  if (p.version != kVersion) fail("feature file version " + std::to_string(p.version) + ", expected 1");
  if (p.precision > 1) fail("unknown precision");
  precision_ = FeaturePrecision(p.precision);
  count_ = p.count;
  width_ = p.width;
  if (width_ == 0 || p.json_len > map_size_ || p.data_offset > map_size_ ||
      sizeof(Preamble) + p.json_len > p.data_offset)
    fail("sizes in the preamble do not match the file's length (truncated?)");
  // The width comes from the file: a huge one must not wrap the products below into plausible sizes.
  size_t row_bytes = 0, norm_bytes = 0;
  try {
    row_bytes = checked_mul(width_, elem_bytes(precision_), "feature row of width " + std::to_string(width_));
    norm_bytes = checked_mul(width_, 2 * sizeof(float), "normalisation of width " + std::to_string(width_));
  } catch (const Error& e) {
    fail(e.what());
  }
  // count_ * row_bytes cannot wrap once count_ is within the data's length.
  if (count_ > (map_size_ - p.data_offset) / row_bytes || p.data_offset + count_ * row_bytes + 8 != map_size_ ||
      norm_bytes > p.data_offset - sizeof(Preamble) - p.json_len)
    fail("sizes in the preamble do not match the file's length (truncated?)");
  Fnv fnv;
  fnv.add(map_, map_size_ - 8);
  uint64_t stored;
  std::memcpy(&stored, map_ + map_size_ - 8, 8);
  if (stored != fnv.h) fail("checksum mismatch: the file is damaged");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(std::string(reinterpret_cast<const char*>(map_) + sizeof(Preamble), p.json_len));
  } catch (const std::exception&) {
    fail("malformed JSON header");
  }
  if (!key.is_null()) {
    const nlohmann::json& k = j["key"];
    for (auto it = key.begin(); it != key.end(); ++it)
      if (!k.contains(it.key()) || k[it.key()] != it.value())
        fail("stale: made for " + it.key() + " = " + (k.contains(it.key()) ? k[it.key()].dump() : "nothing") +
             ", this run has " + it.value().dump());
  }
  norm_.mean.resize(width_);
  norm_.sd.resize(width_);
  const unsigned char* s = map_ + sizeof(Preamble) + p.json_len;
  std::memcpy(norm_.mean.data(), s, width_ * 4);
  std::memcpy(norm_.sd.data(), s + width_ * 4, width_ * 4);
  for (size_t c = 0; c < width_; ++c)
    if (!std::isfinite(norm_.mean[c]) || !std::isfinite(norm_.sd[c]))
      fail("column " + std::to_string(c) + ": the normalisation (mean " + std::to_string(norm_.mean[c]) + ", sd " +
           std::to_string(norm_.sd[c]) + ") is not finite");
  data_ = map_ + p.data_offset;
}

FeatureFile::~FeatureFile() {
  if (map_) ::munmap(const_cast<unsigned char*>(map_), map_size_);
}

namespace {
// fp16 -> fp32 through a 256 KiB table: the per-batch conversion (batch x 5G values) costs a load per value
// instead of a branchy decode, measurable beside the step at G = 3,200.
const float* half_table() {
  static const std::vector<float> t = [] {
    std::vector<float> v(65536);
    for (uint32_t h = 0; h < 65536; ++h) v[h] = half_to_float(uint16_t(h));
    return v;
  }();
  return t.data();
}
}  // namespace

void FeatureFile::gather(const size_t* index, int n, float* out) const {
  for (int i = 0; i < n; ++i) CUGMM_REQUIRE(index[i] < count_, "feature row out of range");
  const float* table = half_table();
  // The file's checksum was right when it opened, yet a row may hold NaN or Inf (a file edited behind its
  // checksum, or written by a defect): it is named here, not found later as a NaN loss. Checked while the
  // row is in cache; the throw waits until the parallel loop is over.
  std::vector<char> bad(size_t(n), 0);
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; ++i) {
    float* o = out + size_t(i) * width_;
    if (precision_ == FeaturePrecision::fp16) {
      const uint16_t* h = reinterpret_cast<const uint16_t*>(data_) + index[i] * width_;
      for (size_t c = 0; c < width_; ++c) o[c] = table[h[c]];
    } else {
      std::memcpy(o, data_ + index[i] * width_ * 4, width_ * 4);
    }
    bool finite = true;
    for (size_t c = 0; c < width_; ++c) finite &= std::isfinite(o[c]);
    bad[size_t(i)] = !finite;
  }
  for (int i = 0; i < n; ++i) {
    if (!bad[size_t(i)]) continue;
    const float* o = out + size_t(i) * width_;
    size_t c = 0;
    while (std::isfinite(o[c])) ++c;
    throw InputError(path_, "particle " + std::to_string(index[i]) + ", feature " + std::to_string(c),
                     std::string("the feature is ") + (std::isnan(o[c]) ? "NaN" : "infinite") +
                         ": the file is damaged (remove it; a run without --resume computes it again)");
  }
}

}  // namespace cugmm
