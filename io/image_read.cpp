#include "io/image_read.h"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "io/input_file.h"
#include "io/text.h"

namespace cugmm::io {

namespace {

}  // namespace

ImageFormat image_format(const std::string& path) {
  const std::string e = lower_extension(path);
  if (e == ".mrc" || e == ".mrcs" || e == ".map" || e == ".st") return ImageFormat::Mrc;
  if (e == ".tif" || e == ".tiff") return ImageFormat::Tiff;
  input_file_size(path);  // a directory or a device is named as such, and never read
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path, "", "cannot open");
  unsigned char b[212] = {};
  f.read(reinterpret_cast<char*>(b), sizeof b);
  if ((b[0] == 'I' && b[1] == 'I' && b[2] == 42 && b[3] == 0) || (b[0] == 'M' && b[1] == 'M' && b[2] == 0 && b[3] == 42))
    return ImageFormat::Tiff;
  if (f.gcount() == sizeof b && std::memcmp(b + 208, "MAP", 3) == 0) return ImageFormat::Mrc;
  throw InputError(path, "", "unknown image format (readable: .mrc .mrcs .map .st .tif .tiff)");
}

ImageRef parse_image_ref(const std::string& ref) {
  size_t at = ref.find('@');
  if (at == std::string::npos || at == 0 ||
      !std::all_of(ref.begin(), ref.begin() + long(at), [](unsigned char c) { return std::isdigit(c); }))
    return {ref, -1};
  const std::string path = ref.substr(at + 1);
  long n = 0;
  for (size_t i = 0; i < at; ++i) {
    n = n * 10 + (ref[i] - '0');
    if (n > (1L << 40)) throw InputError(path, ref, "image number too large");
  }
  if (n < 1) throw InputError(path, ref, "image numbers start at 1");
  return {path, n - 1};
}

ImageInfo read_image_info(const std::string& path) {
  ImageInfo info;
  info.format = image_format(path);
  if (info.format == ImageFormat::Mrc) {
    MrcHeader h = read_mrc_header(path);
    info.nx = h.nx, info.ny = h.ny, info.nz = h.nz, info.pixel_size = h.pixel_size, info.is_volume = h.is_volume;
  } else {
    TiffStack t(path);
    info.nx = t.nx(), info.ny = t.ny(), info.nz = int(t.count());
  }
  return info;
}

Image read_image(const std::string& path_or_ref) {
  ImageRef r = parse_image_ref(path_or_ref);
  if (r.index < 0) return image_format(r.path) == ImageFormat::Mrc ? read_mrc(r.path) : read_tiff(r.path);
  ImageStack st(r.path);
  Image im;
  im.nx = st.nx(), im.ny = st.ny(), im.nz = 1, im.pixel_size = st.pixel_size();
  im.data.resize(im.voxels());
  st.read_section(r.index, im.data.data());
  return im;
}

ImageStack::ImageStack(const std::string& path) : path_(path) {
  if (image_format(path) == ImageFormat::Mrc) {
    mrc_ = std::make_unique<MrcStack>(path);
    const MrcHeader& h = mrc_->header();
    nx_ = h.nx, ny_ = h.ny, count_ = h.nz, pixel_size_ = h.pixel_size;
  } else {
    tiff_ = std::make_unique<TiffStack>(path);
    nx_ = tiff_->nx(), ny_ = tiff_->ny(), count_ = tiff_->count();
  }
}

ImageStack::~ImageStack() = default;

void ImageStack::read_section(long i, float* out) const {
  if (mrc_) mrc_->read_section(i, out);
  else tiff_->read_section(i, out);
}

}  // namespace cugmm::io
