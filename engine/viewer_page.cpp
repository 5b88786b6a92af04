#include "engine/viewer_page.h"

#include <zlib.h>

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "io/atomic_file.h"

namespace cugmm {

namespace embedded {
extern const char* const three_js[];
extern const char* const orbit_js[];
extern const char* const three_licence[];
extern const char* const page_html[];
extern const char* const page_css[];
extern const char* const page_js[];
}  // namespace embedded

namespace {

std::string joined(const char* const* chunks) {
  std::string s;
  for (; *chunks; ++chunks) s += *chunks;
  return s;
}

std::string base64(const std::string& bytes) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | uint32_t(uint8_t(bytes[i + 1])) << 8 | uint8_t(bytes[i + 2]);
    out += t[v >> 18 & 63]; out += t[v >> 12 & 63]; out += t[v >> 6 & 63]; out += t[v & 63];
  }
  if (i < bytes.size()) {
    const uint32_t v = uint32_t(uint8_t(bytes[i])) << 16 | (i + 1 < bytes.size() ? uint32_t(uint8_t(bytes[i + 1])) << 8 : 0);
    out += t[v >> 18 & 63]; out += t[v >> 12 & 63];
    out += i + 1 < bytes.size() ? t[v >> 6 & 63] : '=';
    out += '=';
  }
  return out;
}

// gzip (RFC 1952), what the browser's DecompressionStream("gzip") reads.
std::string gzip(const std::string& text) {
  z_stream z{};
  if (deflateInit2(&z, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) CUGMM_FAIL("zlib: deflateInit2 failed");
  std::string out(deflateBound(&z, uLong(text.size())), '\0');
  z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
  z.avail_in = uInt(text.size());
  z.next_out = reinterpret_cast<Bytef*>(out.data());
  z.avail_out = uInt(out.size());
  const int rc = deflate(&z, Z_FINISH);
  out.resize(z.total_out);
  deflateEnd(&z);
  if (rc != Z_STREAM_END) CUGMM_FAIL("zlib: deflate did not finish");
  return out;
}

template <class T>
std::string bytes_of(const std::vector<T>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(T));  // little-endian, as browsers
}

std::string html_escape(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '&') o += "&amp;";
    else if (c == '<') o += "&lt;";
    else if (c == '>') o += "&gt;";
    else if (c == '"') o += "&quot;";
    else o += c;
  }
  return o;
}

struct Blobs {
  std::vector<std::pair<std::string, std::string>> items;  // id, raw bytes
  std::string add(const std::string& id, std::string bytes) {
    items.emplace_back(id, std::move(bytes));
    return id;
  }
};

// Dense weights W (out x in, row-major) as fp16 or as int8 with one scale per output row.
nlohmann::json encode_weights(const float* w, int out, int in, bool int8, const std::string& id, Blobs& blobs,
                              size_t& bytes) {
  const size_t n = size_t(out) * size_t(in);
  if (!int8) {
    std::vector<uint16_t> h(n);
    for (size_t i = 0; i < n; ++i) {
      const Eigen::half v(w[i]);
      std::memcpy(&h[i], &v, 2);
    }
    bytes += n * 2;
    return {{"format", "fp16"}, {"w", blobs.add(id, bytes_of(h))}};
  }
  std::vector<int8_t> q(n);
  std::vector<float> scale(static_cast<size_t>(out));
  for (int r = 0; r < out; ++r) {
    const float* row = w + size_t(r) * in;
    float m = 0;
    for (int c = 0; c < in; ++c) m = std::max(m, std::abs(row[c]));
    scale[size_t(r)] = m / 127.f;
    for (int c = 0; c < in; ++c) q[size_t(r) * in + c] = m > 0 ? int8_t(std::lround(row[c] / scale[size_t(r)])) : 0;
  }
  bytes += n + size_t(out) * 4;
  return {{"format", "int8"}, {"w", blobs.add(id, bytes_of(q))}, {"scale", blobs.add(id + "s", bytes_of(scale))}};
}

std::vector<float> slice(const std::vector<float>& v, size_t at, size_t n) {
  return std::vector<float>(v.begin() + long(at), v.begin() + long(at + n));
}

// The decoder as the page evaluates it, layer by layer in nn::Sequential's parameter layout (nn/sequential.cpp:
// dense weight then bias; batch-norm gamma then beta, running mean then variance in the state array).
nlohmann::json encode_decoder(const ViewerInput& in, bool int8, Blobs& blobs, size_t& weight_bytes) {
  nlohmann::json layers = nlohmann::json::array();
  size_t np = 0, ns = 0;
  int width = in.arch.in;
  for (size_t l = 0; l < in.arch.layers.size(); ++l) {
    const nn::LayerSpec& s = in.arch.layers[l];
    const std::string id = "L" + std::to_string(l);
    nlohmann::json j = {{"kind", nn::layer_kind_name(s.kind)}, {"in", width}};
    if (s.kind == nn::LayerKind::dense) {
      j.update(encode_weights(in.params.data() + np, s.out, width, int8, id, blobs, weight_bytes));
      np += size_t(s.out) * size_t(width);
      if (s.bias) {
        j["bias"] = blobs.add(id + "b", bytes_of(slice(in.params, np, size_t(s.out))));
        np += size_t(s.out);
      }
      width = s.out;
    } else if (s.kind == nn::LayerKind::act) {
      j["act"] = nn::act_name(s.act);
      j["slope"] = s.slope;
    } else if (s.kind == nn::LayerKind::batchnorm) {
      const size_t w = size_t(width);
      j["gamma"] = blobs.add(id + "g", bytes_of(slice(in.params, np, w)));
      j["beta"] = blobs.add(id + "be", bytes_of(slice(in.params, np + w, w)));
      j["mean"] = blobs.add(id + "m", bytes_of(slice(in.state, ns, w)));
      j["var"] = blobs.add(id + "v", bytes_of(slice(in.state, ns + w, w)));
      j["eps"] = s.eps;
      np += 2 * w;
      ns += 2 * w;
    }
    j["out"] = width;
    layers.push_back(j);
  }
  CUGMM_REQUIRE(np == in.params.size() && ns == in.state.size(), "viewer: decoder layout differs from its parameters");
  CUGMM_REQUIRE(width == 5 * in.G, "viewer: the decoder's output is not 5G wide");
  return layers;
}

}  // namespace

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "auto") return WeightFormat::automatic;
  if (s == "fp16") return WeightFormat::fp16;
  if (s == "int8") return WeightFormat::int8;
  throw Error("weights: '" + s + "' is not one of auto, fp16, int8");
}

ViewerPageInfo write_viewer_page(const std::string& path, const ViewerInput& in, WeightFormat format,
                                 const std::string& title) {
  CUGMM_REQUIRE(in.latent.size() == in.n * size_t(in.d) && in.star_rows.size() == in.n && in.neutral.size() == 5 * size_t(in.G),
                "viewer: inconsistent input sizes");
  size_t dense_weights = 0;
  {
    int width = in.arch.in;
    for (const nn::LayerSpec& s : in.arch.layers)
      if (s.kind == nn::LayerKind::dense) dense_weights += size_t(s.out) * size_t(width), width = s.out;
  }
  const bool int8 = format == WeightFormat::int8 || (format == WeightFormat::automatic && 2 * dense_weights > kAutoFp16MaxBytes);
  ViewerPageInfo info;
  info.weights = int8 ? "int8" : "fp16";
  Blobs blobs;
  nlohmann::json meta;
  meta["title"] = title;
  meta["d"] = in.d;
  meta["G"] = in.G;
  meta["n"] = in.n;
  meta["box"] = in.box;
  meta["pixel"] = in.pixel;
  meta["scale"] = std::vector<float>(in.k.scale, in.k.scale + 5);
  meta["width_lo"] = in.k.width_lo;
  meta["width_hi"] = in.k.width_hi;
  if (in.k.rigid_free)  // trained with --rigid remove: the page removes the modes as decode does
    meta["rigid"] = {{"centre", std::vector<float>(in.k.centre, in.k.centre + 3)},
                     {"mass", in.k.mass},
                     {"inertia_inv", std::vector<float>(in.k.inertia_inv, in.k.inertia_inv + 9)}};
  meta["neutral"] = blobs.add("neutral", bytes_of(in.neutral));
  meta["layers"] = encode_decoder(in, int8, blobs, info.weight_bytes);
  meta["latent"] = blobs.add("latent", bytes_of(in.latent));
  meta["mean"] = in.mean;
  meta["components"] = in.components;
  meta["explained"] = in.explained;
  if (in.cluster_count > 0) {
    std::vector<uint8_t> c(in.clusters.begin(), in.clusters.end());
    meta["clusters"] = {{"count", in.cluster_count}, {"labels", blobs.add("clusters", bytes_of(c))}};
  }
  meta["colourings"] = nlohmann::json::array();
  for (size_t i = 0; i < in.colourings.size(); ++i) {
    CUGMM_REQUIRE(in.colourings[i].second.size() == in.n, "viewer: a colouring has the wrong length");
    meta["colourings"].push_back(
        {{"name", in.colourings[i].first}, {"values", blobs.add("colour" + std::to_string(i), bytes_of(in.colourings[i].second))}});
  }
  std::string rows;
  for (const std::string& r : in.star_rows) rows += r + "\n";
  const std::string packed = gzip(rows);
  info.star_bytes = packed.size();
  meta["star"] = {{"header", in.star_header}, {"rows", blobs.add("star", packed)}};

  std::string meta_text = meta.dump();
  for (size_t at = 0; (at = meta_text.find("</", at)) != std::string::npos; at += 3) meta_text.replace(at, 2, "<\\/");
  std::string page;
  page.reserve(16 << 20);
  page += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>cugmm view: " + html_escape(title) +
          "</title>\n<style>\n" + joined(embedded::page_css) + "</style>\n</head>\n<body>\n" + joined(embedded::page_html) +
          "<details id=\"licences\"><summary>Licences</summary><p>three.js r111 and its OrbitControls (Debian libjs-three), "
          "inlined below:</p><pre>" + html_escape(joined(embedded::three_licence)) + "</pre></details>\n";
  page += "<script>\n" + joined(embedded::three_js) + "\n</script>\n<script>\n" + joined(embedded::orbit_js) + "\n</script>\n";
  page += "<script type=\"application/json\" id=\"cugmm-meta\">" + meta_text + "</script>\n";
  for (const auto& [id, bytes] : blobs.items)
    page += "<script type=\"application/octet-stream\" id=\"blob-" + id + "\">" + base64(bytes) + "</script>\n";
  page += "<script>\n" + joined(embedded::page_js) + "\n</script>\n</body>\n</html>\n";
  io::write_file_atomic(path, page);
  info.bytes = page.size();
  return info;
}

}  // namespace cugmm
