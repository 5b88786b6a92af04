// `cugmm view`'s output: one self-contained HTML file (viewer/page.* with three.js inlined, its licence
// shown in the page) holding the particles' latent points, their colourings, the STAR rows (gzip, unpacked
// by the browser only when a subset is exported) and the decoder, whose dense weights are stored as fp16 or
// as int8 per output row with one fp32 scale per row (the page evaluates them in double precision).
#pragma once
#include <cstddef>
#include <string>

#include "engine/viewer_data.h"

namespace cugmm {

enum class WeightFormat { automatic, fp16, int8 };
WeightFormat parse_weight_format(const std::string& s);  // "auto" | "fp16" | "int8"; throws otherwise
// automatic: fp16 while the decoder's weights take at most this many bytes in fp16, int8 beyond (G = 3,200
// with 512-wide layers is 17 MB in fp16, 8.5 MB in int8: int8 keeps such a page under 25 MB).
constexpr size_t kAutoFp16MaxBytes = size_t(8) << 20;

struct ViewerPageInfo {
  size_t bytes = 0;          // the whole file
  size_t weight_bytes = 0;   // the encoded dense weights, before base64
  size_t star_bytes = 0;     // the gzipped STAR rows, before base64
  std::string weights;       // "fp16" | "int8"
};

ViewerPageInfo write_viewer_page(const std::string& path, const ViewerInput& in, WeightFormat format,
                                 const std::string& title);

}  // namespace cugmm
