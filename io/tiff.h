// TIFF images and stacks through libtiff (cameras and some pipelines write them): one greyscale sample
// per pixel, 8/16-bit integers (unsigned or signed) or 32-bit float, strips or tiles, any compression
// libtiff decodes. Every page is a section, so a multi-page TIFF is a stack. TIFF has no reliable pixel
// size (the resolution tags are for print), so pixel_size is 0 and the caller decides.
#pragma once
#include <memory>
#include <mutex>
#include <cstdint>
#include <string>

#include "io/mrc.h"

namespace cugmm::io {

// Random access to the pages of a TIFF; every page must have the first page's size and sample type.
// Thread-safe (libtiff's handle is not: calls take turns).
class TiffStack {
 public:
  explicit TiffStack(const std::string& path);  // InputError naming the file and page when unreadable
  ~TiffStack();
  TiffStack(const TiffStack&) = delete;
  TiffStack& operator=(const TiffStack&) = delete;
  int nx() const { return nx_; }
  int ny() const { return ny_; }
  long count() const { return pages_; }
  const std::string& path() const { return path_; }
  // Page i (0-based) as float into out[ny * nx]; InputError if i is past the end or a pixel is NaN/Inf.
  void read_section(long i, float* out) const;

  struct Handle;  // libtiff's state (tiff.cpp)

 private:
  std::string path_;
  std::unique_ptr<Handle> tif_;
  int nx_ = 0, ny_ = 0;
  long pages_ = 0;
  uint64_t file_size_ = 0;
  mutable std::mutex mutex_;
};

Image read_tiff(const std::string& path);  // every page, as an Image with nz = pages

}  // namespace cugmm::io
