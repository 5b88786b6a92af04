// The feature file's reader against files damaged behind a valid checksum (issue 17): sizes in the preamble
// that wrap when multiplied, and NaN / Inf in the normalisation or in a row. Each is a cugmm::InputError
// naming the file and the place; none reaches an allocation, a division or the encoder. The base file is
// the fuzz seed (a 2-epoch `train` run's feature file: 200 particles x 60 features, fp16).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "engine/feature_transform.h"
#include "engine/features.h"
#include "support.h"
#include "train_data.h"

using namespace cugmm;

namespace {

const std::string kSeed = std::string(CUGMM_SOURCE_DIR) + "/tests/fuzz/seeds/features/features.cugmm-features";

// Preamble: magic[8], version, precision (u32), count, width, json_len, data_offset (u64) ...; FNV-1a 64 of
// everything before them in the last 8 bytes.
struct Bytes {
  std::vector<unsigned char> b;
  uint64_t u64(size_t at) const {
    uint64_t v;
    std::memcpy(&v, b.data() + at, 8);
    return v;
  }
  void set_u64(size_t at, uint64_t v) { std::memcpy(b.data() + at, &v, 8); }
  std::string save(const std::string& path) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i + 8 < b.size(); ++i) h = (h ^ b[i]) * 1099511628211ull;
    std::memcpy(b.data() + b.size() - 8, &h, 8);
    test::write_text(path, std::string(b.begin(), b.end()));
    return path;
  }
};

Bytes read_bytes(const std::string& path) {
  const std::string s = test::read_text(path);
  return Bytes{std::vector<unsigned char>(s.begin(), s.end())};
}

Bytes seed() {
  Bytes b = read_bytes(kSeed);
  REQUIRE(b.u64(16) == 200);  // count
  REQUIRE(b.u64(24) == 60);   // width
  return b;
}

std::string open_error(const std::string& path) {
  try {
    FeatureFile f(path, nlohmann::json());
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("the seed opens and reads: the cases below fail for what they change, not for the base") {
  FeatureFile f(seed().save(test::scratch_dir("feature_file_ok") + "/f.cugmm-features"), nlohmann::json());
  std::vector<float> row(f.width());
  for (size_t i = 0; i < f.count(); ++i) f.gather(&i, 1, row.data());
  CHECK(f.count() == 200);
}

TEST_CASE("a width that wraps width x element size (or x 8 for the normalisation) is refused, not allocated") {
  const std::string dir = test::scratch_dir("feature_file_wrap");
  // 2^63 + 30 fp16 features: x 2 bytes wraps to the seed's true 60-feature row (120 bytes), so every size
  // check written with plain products passed and the reader then sized its vectors to 2^63 + 30 floats.
  for (uint64_t width : {(uint64_t(1) << 63) + 30, uint64_t(1) << 63, uint64_t(1) << 62}) {
    Bytes b = seed();
    b.set_u64(24, width);
    const std::string e = open_error(b.save(dir + "/f.cugmm-features"));
    INFO(width << ": " << e);
    CHECK(test::contains(e, dir + "/f.cugmm-features"));
    CHECK((test::contains(e, "size overflows") || test::contains(e, "do not match the file's length")));
  }
}

TEST_CASE("NaN or Inf in the normalisation or in a feature row names the column, or the particle and feature") {
  const std::string dir = test::scratch_dir("feature_file_nan");
  const uint64_t json_len = seed().u64(32), data_offset = seed().u64(40);
  {  // sd of column 7 (the sds follow the 60 means after the JSON header)
    Bytes b = seed();
    const float inf = INFINITY;
    std::memcpy(b.b.data() + 64 + json_len + (60 + 7) * 4, &inf, 4);
    const std::string e = open_error(b.save(dir + "/norm.cugmm-features"));
    CHECK_MESSAGE(test::contains(e, "column 7: the normalisation"), e);
    CHECK(test::contains(e, "is not finite"));
  }
  {  // particle 12, feature 5 (fp16 NaN 0x7e00), and particle 13, feature 0 (fp16 -Inf 0xfc00)
    Bytes b = seed();
    const uint16_t nan16 = 0x7e00, minf16 = 0xfc00;
    std::memcpy(b.b.data() + data_offset + (12 * 60 + 5) * 2, &nan16, 2);
    std::memcpy(b.b.data() + data_offset + (13 * 60 + 0) * 2, &minf16, 2);
    FeatureFile f(b.save(dir + "/row.cugmm-features"), nlohmann::json());  // opens: rows are checked when read
    std::vector<float> rows(2 * f.width());
    const size_t ok[2] = {11, 14}, nan[2] = {11, 12}, inf[1] = {13};
    f.gather(ok, 2, rows.data());
    CHECK_THROWS_WITH_AS(f.gather(nan, 2, rows.data()), doctest::Contains("particle 12, feature 5: the feature is NaN"),
                         InputError);
    CHECK_THROWS_WITH_AS(f.gather(inf, 1, rows.data()),
                         doctest::Contains("particle 13, feature 0: the feature is infinite"), InputError);
  }
}

TEST_CASE("the encoder's input table: row i is particle i's component scores, from its unit-RMS row") {
  FeatureFile f(kSeed, nlohmann::json());
  const size_t W = f.width(), n = f.count();
  FeatureTransform t;
  CHECK(encoder_input_table(f, t).empty());  // no components: the encoder reads the rows themselves
  t.k = 3;
  t.row_rms = true;
  t.basis.resize(W * 3);
  for (size_t i = 0; i < t.basis.size(); ++i) t.basis[i] = float(std::sin(0.37 * double(i) + 1.0));
  const std::vector<float> table = encoder_input_table(f, t);
  REQUIRE(table.size() == n * 3);
  std::vector<float> row(W);
  double worst = 0, scale = 0;
  for (size_t i = 0; i < n; ++i) {
    f.gather(&i, 1, row.data());
    double ms = 0;
    for (float v : row) ms += double(v) * v / double(W);
    for (int j = 0; j < 3; ++j) {
      double s = 0;
      for (size_t c = 0; c < W; ++c) s += double(row[c]) / std::sqrt(ms) * t.basis[c * 3 + size_t(j)];
      worst = std::max(worst, std::abs(s - table[i * 3 + size_t(j)]));
      scale = std::max(scale, std::abs(s));
    }
  }
  CHECK(scale > 1);
  CHECK_MESSAGE(worst < 1e-5 * scale, worst);
}

TEST_CASE("train: a NaN feature stops the run naming it; no NaN reaches an output, the checkpoint is kept") {
  using namespace train_test;
  DataSet d = make_data("feature_file_train", "linear", 160, 2.0);
  const std::string out = d.dir + "/run", opts = "--batch 16 --lr 1e-3 --latent 2 --hidden 64";
  test::RunResult r = test::run(train_cmd(d, out, opts + " --epochs 1"));
  REQUIRE_MESSAGE(r.status == 0, r.out);
  const std::string ckpt = file_bytes(out + "/model.ckpt");
  // Feature 2 of every particle NaN, the checksum made right again: the file still answers the run's key,
  // so the resumed run reuses it and meets the NaN as it reads the rows (the input components' pass).
  const std::string path = out + "/features.cugmm-features";
  Bytes b = read_bytes(path);
  uint32_t precision;
  std::memcpy(&precision, b.b.data() + 12, 4);
  const uint64_t count = b.u64(16), width = b.u64(24), data_offset = b.u64(40), eb = precision == 1 ? 2 : 4;
  const uint16_t nan16 = 0x7e00;
  const float nan32 = std::nanf("");
  for (uint64_t i = 0; i < count; ++i)
    std::memcpy(b.b.data() + data_offset + (i * width + 2) * eb, eb == 2 ? static_cast<const void*>(&nan16) : &nan32, eb);
  b.save(path);
  r = test::run(train_cmd(d, out, opts + " --epochs 2 --resume"));
  CHECK(r.status != 0);
  CHECK_MESSAGE(test::contains(r.out, "features.cugmm-features, particle "), r.out);
  CHECK_MESSAGE(test::contains(r.out, ", feature 2: the feature is NaN"), r.out);
  CHECK_FALSE(test::contains(r.out, "diverged"));
  CHECK(file_bytes(out + "/model.ckpt") == ckpt);
  for (const auto& e : fs::directory_iterator(out))
    if (e.path().extension() == ".txt" || e.path().extension() == ".star")
      CHECK_MESSAGE(!test::contains(file_bytes(e.path().string()), "nan"), e.path().string());
  // The message's advice holds: without the file a run (not a resumed one: that needs the features its
  // checkpoint was trained on) computes it again.
  CHECK(test::contains(r.out, "remove it; a run without --resume computes it again"));
  fs::remove(path);
  r = test::run(train_cmd(d, out, opts + " --epochs 1"));
  CHECK_MESSAGE(r.status == 0, r.out);
  CHECK(fs::exists(path));
}
