#include "engine/train_outputs.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "engine/latent_metrics.h"
#include "io/atomic_file.h"
#include "io/plot.h"
#include "io/star.h"

namespace cugmm {

namespace {
std::vector<size_t> input_order(const std::vector<int64_t>& source_row) {
  std::vector<size_t> at(source_row.size(), SIZE_MAX);
  for (size_t i = 0; i < source_row.size(); ++i) {
    const int64_t r = source_row[i];
    CUGMM_REQUIRE(r >= 0 && size_t(r) < at.size() && at[size_t(r)] == SIZE_MAX,
                  "the particle cache's rows are not a permutation of the input's");
    at[size_t(r)] = i;
  }
  return at;
}
}  // namespace

std::vector<int64_t> output_rows(const ParticleCache& cache) {
  std::vector<int64_t> rows(cache.count());
  for (size_t i = 0; i < cache.count(); ++i)
    rows[i] = cache.particle(i).source_row * int64_t(cache.copies()) + int64_t(cache.copy_index(i));
  return rows;
}

void write_latent_txt(const std::string& path, const std::vector<float>& latent, int d,
                      const std::vector<int64_t>& source_row, size_t copies) {
  const std::vector<size_t> at = input_order(source_row);
  std::ostringstream o;
  if (copies > 1)
    o << "# cugmm latent: symmetry expansion, one row per copy, " << copies << " consecutive rows per particle (copy "
      << "1.." << copies << ", rlnCugmmSymmetryCopy) in the input's order, " << d << " coordinates\n";
  else
    o << "# cugmm latent: one row per particle in the input's order, " << d << " coordinates\n";
  char buf[32];
  for (size_t r = 0; r < at.size(); ++r) {
    for (int j = 0; j < d; ++j) {
      std::snprintf(buf, sizeof buf, "%s%.9g", j ? " " : "", double(latent[at[r] * d + j]));
      o << buf;
    }
    o << "\n";
  }
  io::write_file_atomic(path, o.str());
}

std::vector<float> read_latent_txt(const std::string& path, int d) {
  std::ifstream in(path);
  if (!in) throw InputError(path, "", "cannot read");
  std::vector<float> v;
  std::string line;
  for (long ln = 1; std::getline(in, line); ++ln) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ss(line);
    int n = 0;
    std::string w;
    while (ss >> w) {
      char* end;
      const double x = std::strtod(w.c_str(), &end);
      if (*end != 0 || !std::isfinite(x)) throw InputError(path, "line " + std::to_string(ln), "'" + quote_value(w) + "' is not a finite number");
      v.push_back(float(x));
      ++n;
    }
    if (n != d)
      throw InputError(path, "line " + std::to_string(ln), "has " + std::to_string(n) + " numbers, the latent has " +
                                                                std::to_string(d) + " dimensions");
  }
  return v;
}

void write_latent_star(const std::string& path, const io::ParticleSet& set, const std::vector<float>& latent,
                       const std::vector<float>& score, int d, const std::vector<int64_t>& source_row) {
  const std::vector<size_t> at = input_order(source_row);
  CUGMM_REQUIRE(at.size() == set.particles.size(), "latent rows and particles differ in number");
  std::vector<size_t> all(set.particles.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  io::StarFile star = io::particle_subset_star(set, all);
  io::StarBlock* b = star.find("particles");
  CUGMM_REQUIRE(b && b->rows.size() == all.size(), "particle table missing from the STAR document");
  std::vector<int> cols;
  for (int j = 0; j < d; ++j) cols.push_back(b->add_column("rlnCugmmLatent" + std::to_string(j + 1)));
  const int frc = b->add_column("rlnCugmmFrc");
  char buf[32];
  for (size_t r = 0; r < all.size(); ++r) {
    for (int j = 0; j < d; ++j) {
      std::snprintf(buf, sizeof buf, "%.7g", double(latent[at[r] * d + j]));
      b->rows[r][size_t(cols[j])] = buf;
    }
    std::snprintf(buf, sizeof buf, "%.6f", double(score[at[r]]));
    b->rows[r][size_t(frc)] = buf;
  }
  io::write_star(path, star);
}

void write_loss(const std::string& txt, const std::string& png, const std::vector<EpochRecord>& history) {
  std::ostringstream o;
  o << "# epoch train_loss train_score val_loss val_score seconds\n";
  std::vector<double> e, tl, vl, ve;
  char buf[160];
  for (const EpochRecord& r : history) {
    std::snprintf(buf, sizeof buf, "%d %.7f %.7f %s %s %.3f\n", r.epoch, r.train_loss, r.train_score,
                  r.has_val ? std::to_string(r.val_loss).c_str() : "nan",
                  r.has_val ? std::to_string(r.val_score).c_str() : "nan", r.seconds);
    o << buf;
    e.push_back(r.epoch);
    tl.push_back(r.train_loss);
    if (r.has_val) {
      ve.push_back(r.epoch);
      vl.push_back(r.val_loss);
    }
  }
  io::write_file_atomic(txt, o.str());
  io::Plot p;
  p.title("training loss (-FRC score + regularisers)").xlabel("epoch").ylabel("loss");
  p.add_series("training", e, tl);
  if (!vl.empty()) p.add_series("validation", ve, vl);
  p.write_png(png);
}

nlohmann::json latent_diagnostic(const std::vector<float>& latent, int d) {
  const size_t n = latent.size() / size_t(d);
  nlohmann::json j;
  std::vector<double> var(size_t(d), 0.0), mean(size_t(d), 0.0);
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) mean[k] += latent[i * d + k];
  for (double& m : mean) m /= double(std::max<size_t>(n, 1));
  for (size_t i = 0; i < n; ++i)
    for (int k = 0; k < d; ++k) var[k] += std::pow(latent[i * d + k] - mean[k], 2);
  for (double& v : var) v /= double(std::max<size_t>(n, 2) - 1);
  j["variance"] = var;
  double erank = 0;
  std::vector<double> spectrum;
  if (n >= 2) {
    Matrix m(n, size_t(d));
    for (size_t i = 0; i < n * size_t(d); ++i) m.values[i] = latent[i];
    bool finite = true;
    for (double v : m.values) finite = finite && std::isfinite(v);
    double total = 0;
    if (finite) {
      Pca p = pca(m);
      spectrum = p.variance;
      for (double v : spectrum) total += std::max(0.0, v);
    }
    if (total > 0) {
      double h = 0;
      for (double v : spectrum)
        if (v > 0) h -= (v / total) * std::log(v / total);
      erank = std::exp(h);
    }
  }
  j["pca_variance"] = spectrum;
  j["effective_rank"] = erank;
  return j;
}

std::string latent_diagnostic_line(const nlohmann::json& diag) {
  std::ostringstream o;
  o << "latent variance per dimension:";
  char buf[32];
  for (double v : diag["variance"].get<std::vector<double>>()) {
    std::snprintf(buf, sizeof buf, " %.3g", v);
    o << buf;
  }
  std::snprintf(buf, sizeof buf, "; effective rank %.2f", diag["effective_rank"].get<double>());
  o << buf;
  if (diag["effective_rank"].get<double>() < 1.05) o << " (collapsed onto one direction or a point)";
  return o.str();
}

}  // namespace cugmm
