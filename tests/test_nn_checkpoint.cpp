// Checkpoints: a reload reproduces the next training step bit for bit; truncated, corrupt and
// mismatched files are refused with a message that says why; writes are atomic.
#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <vector>

#include "core/error.h"
#include "kernels/philox.h"
#include "nn/adam.h"
#include "nn/checkpoint.h"
#include "nn/sequential.h"
#include "support.h"

using namespace cugmm;
using namespace cugmm::nn;
namespace fs = std::filesystem;

namespace {

std::vector<float> rand_vec(size_t n, uint64_t stream) {
  std::vector<float> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = 2 * philox_uniform(4, stream, i) - 1;
  return v;
}

// Dropout (masks by step), batch-norm (running statistics), clipping: all state a resume must carry.
Arch arch() {
  Arch a;
  a.in = 12;
  a.layers = {dense(24), batchnorm(), leaky_relu(0.05f), dropout(0.3f), dense(24), tanh_act(), dense(5)};
  return a;
}

struct Trainer {
  Sequential net;
  Adam opt;
  std::vector<float> x = rand_vec(16 * 12, 1), r = rand_vec(16 * 5, 2);
  Trainer(Moments m) : net(arch(), cpu_context(), 77), opt(net, config(m)) {}
  static AdamConfig config(Moments m) {
    AdamConfig c;
    c.lr = 1e-2f;
    c.clip_norm = 0.5f;
    c.moments = m;
    return c;
  }
  void step() {
    net.forward(x.data(), 16, Mode::train, static_cast<uint64_t>(opt.steps()));
    net.backward(r.data(), false);
    opt.step();
  }
  void save(const std::string& path, int epoch) {
    Checkpoint ck;
    ck.meta["epoch"] = epoch;
    net.save(ck, "net.");
    opt.save(ck, "net.");
    ck.save(path);
  }
  int load(const std::string& path) {
    Checkpoint ck = Checkpoint::load(path);
    net.load(ck, "net.");
    opt.load(ck, "net.");
    return ck.meta.at("epoch").get<int>();
  }
};

std::vector<char> read_bytes(const std::string& p) {
  std::ifstream f(p, std::ios::binary);
  return std::vector<char>((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}
void write_bytes(const std::string& p, const std::vector<char>& b) {
  std::ofstream f(p, std::ios::binary);
  f.write(b.data(), static_cast<std::streamsize>(b.size()));
}

}  // namespace

TEST_CASE("save, reload into a fresh network and optimizer: the next step is bit-identical") {
  std::string dir = test::scratch_dir("nn_checkpoint_resume");
  for (Moments m : {Moments::f32, Moments::bf16}) {
    Trainer a(m);
    for (int s = 0; s < 3; ++s) a.step();
    a.save(dir + "/ck.bin", 3);
    a.step();
    std::vector<float> want = a.net.params_to_host(), want_state = a.net.state_to_host();

    Trainer b(m);  // same seed, but untrained: everything must come from the file
    CHECK(b.net.params_to_host() != want);
    CHECK(b.load(dir + "/ck.bin") == 3);
    CHECK(b.opt.steps() == 3);
    b.step();
    CHECK(b.net.params_to_host() == want);
    CHECK(b.net.state_to_host() == want_state);
  }
}

TEST_CASE("truncated, corrupt and foreign files are refused, naming the file and the reason") {
  std::string dir = test::scratch_dir("nn_checkpoint_bad");
  Trainer a(Moments::f32);
  a.step();
  std::string good = dir + "/good.ck";
  a.save(good, 1);
  std::vector<char> bytes = read_bytes(good);
  REQUIRE(bytes.size() > 1000);

  std::string p = dir + "/bad.ck";
  write_bytes(p, std::vector<char>(bytes.begin(), bytes.end() - 100));
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("truncated"), InputError);
  write_bytes(p, std::vector<char>(bytes.begin(), bytes.begin() + 30));
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("truncated"), InputError);
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("bad.ck"), InputError);

  std::vector<char> flipped = bytes;
  flipped[bytes.size() - 50] ^= 0x10;  // one bit in the data
  write_bytes(p, flipped);
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("checksum"), InputError);

  std::vector<char> magic = bytes;
  magic[0] = 'X';
  write_bytes(p, magic);
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("not a cugmm checkpoint"), InputError);

  std::vector<char> version = bytes;
  version[8] = 9;
  write_bytes(p, version);
  CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("version 9"), InputError);

  // Another architecture: a wider hidden layer.
  Checkpoint ck = Checkpoint::load(good);
  Arch other = arch();
  other.layers[0].out = 25;
  Sequential wrong(other, cpu_context(), 1);
  CHECK_THROWS_WITH_AS(wrong.load(ck, "net."), doctest::Contains("architecture mismatch"), InputError);
  CHECK_THROWS_WITH_AS(wrong.load(ck, "decoder."), doctest::Contains("no network"), InputError);
  // Other optimizer moments.
  Trainer b(Moments::bf16);
  b.net.load(ck, "net.");
  CHECK_THROWS_WITH_AS(b.opt.load(ck, "net."), doctest::Contains("moments are f32"), InputError);
}

TEST_CASE("writes are atomic: no temporary left behind, a failed write leaves the old file intact") {
  std::string dir = test::scratch_dir("nn_checkpoint_atomic");
  Trainer a(Moments::f32);
  std::string p = dir + "/model.ck";
  a.save(p, 1);
  std::vector<char> first = read_bytes(p);
  a.step();
  a.save(p, 2);  // replaces
  CHECK(read_bytes(p) != first);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(dir)) {
    ++files;
    CHECK(e.path().filename() == "model.ck");
  }
  CHECK(files == 1);
  // The final name is a directory's: the rename fails, the temporary is removed, nothing else changes.
  fs::create_directories(dir + "/occupied.ck/inner");
  CHECK_THROWS_AS(a.save(dir + "/occupied.ck", 3), Error);
  CHECK(fs::is_directory(dir + "/occupied.ck"));
  files = 0;
  for (const auto& e : fs::directory_iterator(dir)) files += e.path().filename().string()[0] == '.';
  CHECK(files == 0);
  CHECK_THROWS_AS(a.save(dir + "/missing/dir/model.ck", 3), Error);
  CHECK(a.load(p) == 2);
}

TEST_CASE("crc32 is the IEEE CRC (zlib's): known value and chaining") {
  const char* s = "123456789";
  CHECK(crc32(0, s, 9) == 0xCBF43926u);
  CHECK(crc32(crc32(0, s, 4), s + 4, 5) == 0xCBF43926u);
}

TEST_CASE("a NaN or Inf weight in a checkpoint is refused on reading, naming the array and the element") {
  // Issue 17 item 3: weights are a boundary; a checkpoint with a valid checksum but a non-finite value (an
  // edited file, or a defect that wrote one) must not decode into NaN latents and maps.
  std::string dir = test::scratch_dir("nn_checkpoint_nan");
  Checkpoint c;
  c.put_f32("enc.w0", {1.f, 2.f, std::nanf(""), 4.f});
  c.put_f32("dec.b0", {0.f, INFINITY});
  c.put_f32("ok", {1.f, -2.f});
  c.save(dir + "/nan.ck");
  Checkpoint r = Checkpoint::load(dir + "/nan.ck");
  CHECK(r.get_f32("ok", 2) == std::vector<float>{1.f, -2.f});
  CHECK_THROWS_WITH_AS(r.get_f32("enc.w0", 4), doctest::Contains("array 'enc.w0' element 2 is NaN"), InputError);
  CHECK_THROWS_WITH_AS(r.get_f32("dec.b0", 2), doctest::Contains("element 1 is infinite"), InputError);
  CHECK_THROWS_WITH_AS(r.get_f32("dec.b0", 2), doctest::Contains("nan.ck"), InputError);
}

TEST_CASE("an array's count or offset that is not a whole number >= 0 is refused, not converted (fuzzing)") {
  // The fuzz target's UBSan: get<size_t>() of "count": 1e30 or -1.5 is a float-to-integer conversion out of
  // range (undefined behaviour); of -1 a wrap to 2^64 - 1. A header edited so, its length and CRC made
  // right again, must be refused naming the array and the field.
  std::string dir = test::scratch_dir("nn_checkpoint_count");
  Checkpoint c;
  c.put_f32("a", {1.f, 2.f});
  c.put_f32("b", {3.f});
  c.save(dir + "/ok.ck");
  const std::vector<char> bytes = read_bytes(dir + "/ok.ck");
  uint64_t hlen;
  std::memcpy(&hlen, bytes.data() + 12, 8);  // after the magic (8) and the version (4)
  const std::string header(bytes.data() + 20, hlen);
  auto with = [&](const std::string& from, const std::string& to) {
    std::string h = header;
    const size_t at = h.find(from);
    REQUIRE(at != std::string::npos);
    h.replace(at, from.size(), to);
    std::vector<char> out(bytes.begin(), bytes.begin() + 12);
    const uint64_t n = h.size();
    out.insert(out.end(), reinterpret_cast<const char*>(&n), reinterpret_cast<const char*>(&n) + 8);
    out.insert(out.end(), h.begin(), h.end());
    out.insert(out.end(), bytes.begin() + 20 + long(hlen), bytes.end() - 4);
    const uint32_t crc = crc32(0, out.data(), out.size());
    out.insert(out.end(), reinterpret_cast<const char*>(&crc), reinterpret_cast<const char*>(&crc) + 4);
    const std::string p = dir + "/edited.ck";
    write_bytes(p, out);
    return p;
  };
  CHECK_NOTHROW(Checkpoint::load(with("\"count\":2,", "\"count\":2,")));  // the rewriting alone is harmless
  for (const char* bad : {"1e30", "-1.5", "-1", "2.0"}) {
    CAPTURE(bad);
    const std::string p = with("\"count\":2,", std::string("\"count\":") + bad + ",");
    CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("header, array 1, 'count'"), InputError);
    CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("is not an integer in [0, "), InputError);
    CHECK_THROWS_WITH_AS(Checkpoint::load(p), doctest::Contains("edited.ck"), InputError);
  }
  CHECK_THROWS_WITH_AS(Checkpoint::load(with("\"offset\":8}", "\"offset\":-8e99}")),
                       doctest::Contains("header, array 2, 'offset'"), InputError);
}

TEST_CASE("the networks' and the optimizer's integers in the header are checked before conversion (fuzzing)") {
  // Reachable only through a file whose checksum is right (an edited one, made whole again by saving it):
  // get<int64_t>() of 1e30 is undefined behaviour, so each is refused naming the file and the record.
  std::string dir = test::scratch_dir("nn_checkpoint_meta_ints");
  Trainer a(Moments::f32);
  a.step();
  a.save(dir + "/ok.ck", 1);
  struct Edit { const char* what; nlohmann::json value; const char* says; };
  const Edit edits[] = {{"t", 1e30, "net.adam"}, {"t", -1.5, "net.adam"}, {"seed", 2.5, "net.adam"},
                        {"net.seed", 1e99, "net.seed"}};
  for (const Edit& e : edits) {
    CAPTURE(e.what);
    CAPTURE(e.value.dump());
    Checkpoint ck = Checkpoint::load(dir + "/ok.ck");
    if (std::string(e.what) == "net.seed") ck.meta["net.seed"] = e.value;
    else ck.meta["net.adam"][e.what] = e.value;
    ck.save(dir + "/edited.ck");
    Trainer b(Moments::f32);
    CHECK_THROWS_WITH_AS(b.load(dir + "/edited.ck"), doctest::Contains(e.says), InputError);
    CHECK_THROWS_WITH_AS(b.load(dir + "/edited.ck"), doctest::Contains("edited.ck"), InputError);
  }
  CHECK_NOTHROW(Trainer(Moments::f32).load(dir + "/ok.ck"));
}

TEST_CASE("streamed writes: buffers written from their own memory, files re-staged in small chunks, same bytes") {
  // Issue 13 (scale): a checkpoint of G = 100,000 networks must not hold a second copy of ~6 GB of weights
  // and moments. The streamed writer must still produce the version-1 layout byte for byte, so files written
  // before it load, and it loads what it writes.
  std::string dir = test::scratch_dir("nn_checkpoint_stream");
  Context& cx = cpu_context();
  const std::vector<float> w = rand_vec(1001, 5), small = {0.5f, -1.f, 2.f};
  std::vector<uint16_t> m(777);
  for (size_t i = 0; i < m.size(); ++i) m[i] = uint16_t(i * 2654435761u >> 7);
  Buffer<float> bw(cx);
  bw.upload(w);
  Buffer<uint16_t> bm(cx);
  bm.upload(m);

  Checkpoint copied, streamed;
  for (Checkpoint* c : {&copied, &streamed}) {
    c->meta["epoch"] = 7;
    c->meta["note"] = "x";
    c->put_f32("small", small);
  }
  copied.put_f32("w", w);
  copied.put_u16("m", m);
  streamed.put_f32("w", bw);  // references
  streamed.put_u16("m", bm);
  copied.save(dir + "/copied.ck");
  streamed.save(dir + "/streamed.ck");
  const std::vector<char> bytes = read_bytes(dir + "/copied.ck");
  CHECK(read_bytes(dir + "/streamed.ck") == bytes);

  // The version-1 layout written out by hand: magic, version, header length, header, arrays by name, CRC.
  nlohmann::json h;
  h["meta"] = {{"epoch", 7}, {"note", "x"}};
  h["arrays"] = {{{"name", "m"}, {"dtype", "u16"}, {"count", 777}, {"offset", 0}},
                 {{"name", "small"}, {"dtype", "f32"}, {"count", 3}, {"offset", 1554}},
                 {{"name", "w"}, {"dtype", "f32"}, {"count", 1001}, {"offset", 1566}}};
  const std::string header = h.dump();
  std::vector<char> want = {'C', 'U', 'G', 'M', 'M', 'C', 'K', 'P', 1, 0, 0, 0};
  const uint64_t hlen = header.size();
  auto append = [&](const void* p, size_t n) {
    want.insert(want.end(), static_cast<const char*>(p), static_cast<const char*>(p) + n);
  };
  append(&hlen, 8);
  append(header.data(), header.size());
  append(m.data(), m.size() * 2);
  append(small.data(), small.size() * 4);
  append(w.data(), w.size() * 4);
  const uint32_t crc = crc32(0, want.data(), want.size());
  append(&crc, 4);
  CHECK(bytes == want);

  // A loaded checkpoint reads its arrays from the file on request; saved again through 12-byte chunks (not
  // a multiple of either array) it gives the same bytes.
  Checkpoint back = Checkpoint::load(dir + "/streamed.ck");
  back.save(dir + "/restaged.ck", 12);
  CHECK(read_bytes(dir + "/restaged.ck") == bytes);
  CHECK(back.get_f32("w", 1001) == w);
  CHECK(back.get_u16("m", 777) == m);
  Buffer<float> rw(cx, 1001);
  back.read_f32("w", rw);
  CHECK(rw.to_host() == w);
  Buffer<uint16_t> rm(cx, 777);
  back.read_u16("m", rm);
  CHECK(rm.to_host() == m);
  Buffer<float> wrong(cx, 1000);
  CHECK_THROWS_WITH_AS(back.read_f32("w", wrong), doctest::Contains("holds 1001 values"), InputError);

  // The loaded file stays open: replacing it (as the next epoch's checkpoint does, by rename) does not
  // change what an earlier load reads.
  Checkpoint other;
  other.put_f32("w", std::vector<float>(1001, 3.f));
  other.put_u16("m", m);
  other.put_f32("small", small);
  other.save(dir + "/streamed.ck");
  CHECK(back.get_f32("w", 1001) == w);

  // Non-finite values are refused on the Buffer path too, naming the element.
  std::vector<float> bad = w;
  bad[600] = INFINITY;
  Checkpoint nan;
  nan.put_f32("w", bad);
  nan.save(dir + "/inf.ck");
  CHECK_THROWS_WITH_AS(Checkpoint::load(dir + "/inf.ck").read_f32("w", rw), doctest::Contains("element 600 is infinite"),
                       InputError);
}

TEST_CASE("a checkpoint larger than one staging chunk round-trips (chunked checksum on loading)") {
  std::string dir = test::scratch_dir("nn_checkpoint_large");
  const size_t n = (Checkpoint::kChunkBytes / 4) + 12345;  // 64 MiB + a partial chunk
  Buffer<float> b(cpu_context(), n);
  for (size_t i = 0; i < n; ++i) b.data()[i] = float(i % 9973) - 4000.f;
  Checkpoint ck;
  ck.meta["what"] = "large";
  ck.put_f32("w", b);
  ck.put_f32("small", std::vector<float>{1.f, 2.f});
  Buffer<float> empty(cpu_context());  // no memory at all (a network's state without batch-norm)
  ck.put_f32("empty", empty);
  ck.save(dir + "/large.ck");
  Checkpoint back = Checkpoint::load(dir + "/large.ck");
  Buffer<float> r(cpu_context(), n);
  back.read_f32("w", r);
  CHECK(std::equal(r.data(), r.data() + n, b.data()));
  CHECK(back.get_f32("empty", 0).empty());
  CHECK(crc32(0x1234u, nullptr, 0) == 0x1234u);
}
