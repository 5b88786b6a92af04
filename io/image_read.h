// Any image file cugmm reads, by extension: .mrc .mrcs .map .st (MRC) and .tif .tiff (TIFF); other
// extensions are recognised by their content (TIFF magic, MRC 'MAP '). "N@file" is RELION's reference to
// image N (1-based) of a stack: the file is then a stack whatever its extension says.
#pragma once
#include <memory>
#include <string>

#include "io/mrc.h"
#include "io/tiff.h"

namespace cugmm::io {

enum class ImageFormat { Mrc, Tiff };
ImageFormat image_format(const std::string& path);  // InputError when neither extension nor content says

struct ImageRef {
  std::string path;
  long index = -1;  // 0-based section; -1: the whole file
};
// "000012@dir/a.mrcs" -> {"dir/a.mrcs", 11}; a path without a leading "<digits>@" is the whole file.
ImageRef parse_image_ref(const std::string& ref);

struct ImageInfo {
  ImageFormat format = ImageFormat::Mrc;
  int nx = 0, ny = 0, nz = 0;  // nz: sections (stack images, TIFF pages) or volume depth
  float pixel_size = 0;        // 0 when the file does not say (TIFF never does)
  bool is_volume = false;
};
ImageInfo read_image_info(const std::string& path);

// The whole file (nz sections), or with "N@file" that one image (nz = 1).
Image read_image(const std::string& path_or_ref);

// Random access to the sections of an MRC (memory-mapped) or TIFF stack. Thread-safe.
class ImageStack {
 public:
  explicit ImageStack(const std::string& path);
  ~ImageStack();
  int nx() const { return nx_; }
  int ny() const { return ny_; }
  long count() const { return count_; }
  float pixel_size() const { return pixel_size_; }
  const std::string& path() const { return path_; }
  // Section i (0-based) into out[ny * nx]; InputError naming the image if i is past the end or a pixel
  // is NaN/Inf.
  void read_section(long i, float* out) const;

 private:
  std::string path_;
  std::unique_ptr<MrcStack> mrc_;
  std::unique_ptr<TiffStack> tiff_;
  int nx_ = 0, ny_ = 0;
  long count_ = 0;
  float pixel_size_ = 0;
};

}  // namespace cugmm::io
