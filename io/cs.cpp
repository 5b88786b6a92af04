#include "io/cs.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <tuple>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/input_file.h"
#include "io/text.h"
#include "io/npy.h"
#include "kernels/geometry.h"

namespace cugmm::io {

namespace {

const NpyField* numeric_field(const NpyArray& a, const std::string& name, size_t min_elems) {
  const NpyField* f = a.field(name);
  if (!f) return nullptr;
  if (!f->numeric() || f->elems < min_elems)
    throw InputError(a.path, "field '" + name + "'",
                     "expected " + std::to_string(min_elems) + " number(s) per particle, found type " + f->type);
  return f;
}

}  // namespace

StarFile cs_to_star(const std::string& path, bool require_poses) {
  NpyArray a = read_npy(path);
  const NpyField* f_path = a.field("blob/path");
  const NpyField* f_idx = numeric_field(a, "blob/idx", 1);
  if (!f_path || !f_idx) throw InputError(path, "", "no blob/path and blob/idx fields: not a cryoSPARC particle file");
  if (f_path->kind != 'S') throw InputError(path, "field 'blob/path'", "is not a byte string (" + f_path->type + ")");
  const NpyField* f_psize = numeric_field(a, "blob/psize_A", 1);
  const NpyField* f_shape = numeric_field(a, "blob/shape", 1);
  const NpyField* f_pose = numeric_field(a, "alignments3D/pose", 3);
  const NpyField* f_shift = numeric_field(a, "alignments3D/shift", 2);
  const NpyField* f_apsize = numeric_field(a, "alignments3D/psize_A", 1);
  const NpyField* f_split = numeric_field(a, "alignments3D/split", 1);
  const NpyField* f_mic = a.field("location/micrograph_path");
  if (f_mic && f_mic->kind != 'S') f_mic = nullptr;
  if (require_poses && !f_pose)
    throw InputError(path, "", "no alignments3D/pose field: these particles have no 3-D poses (use the particles "
                               "of a 3-D refinement job)");
  if (f_shift && !f_apsize && !f_psize)
    throw InputError(path, "field 'alignments3D/shift'", "no alignments3D/psize_A or blob/psize_A to convert it to Å");
  const NpyField* f_df1 = numeric_field(a, "ctf/df1_A", 1);
  const NpyField* f_df2 = numeric_field(a, "ctf/df2_A", 1);
  const NpyField* f_ang = numeric_field(a, "ctf/df_angle_rad", 1);
  if (!f_ang) f_ang = numeric_field(a, "ctf/angle_rad", 1);
  const NpyField* f_kv = numeric_field(a, "ctf/accel_kv", 1);
  const NpyField* f_cs = numeric_field(a, "ctf/cs_mm", 1);
  const NpyField* f_q0 = numeric_field(a, "ctf/amp_contrast", 1);
  const NpyField* f_phase = numeric_field(a, "ctf/phase_shift_rad", 1);
  const NpyField* f_bfac = numeric_field(a, "ctf/bfactor", 1);
  const NpyField* f_scale = numeric_field(a, "ctf/scale", 1);
  const NpyField* f_group = numeric_field(a, "ctf/exp_group_id", 1);
  if ((f_df1 != nullptr) != (f_df2 != nullptr)) throw InputError(path, "", "ctf/df1_A and ctf/df2_A must come together");

  StarFile star;
  star.version = 30001;
  star.blocks.resize(2);
  StarBlock& optics = star.blocks[0];
  StarBlock& parts = star.blocks[1];
  optics.name = "optics";
  parts.name = "particles";

  optics.columns = {"rlnOpticsGroupName", "rlnOpticsGroup"};
  if (f_psize) optics.columns.push_back("rlnImagePixelSize");
  if (f_shape) optics.columns.push_back("rlnImageSize");
  optics.columns.push_back("rlnImageDimensionality");
  if (f_kv) optics.columns.push_back("rlnVoltage");
  if (f_cs) optics.columns.push_back("rlnSphericalAberration");
  if (f_q0) optics.columns.push_back("rlnAmplitudeContrast");
  optics.columns.push_back("rlnCtfDataArePhaseFlipped");

  parts.columns = {"rlnImageName"};
  if (f_mic) parts.columns.push_back("rlnMicrographName");
  if (f_pose) for (const char* c : {"rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"}) parts.columns.push_back(c);
  if (f_shift) for (const char* c : {"rlnOriginXAngst", "rlnOriginYAngst"}) parts.columns.push_back(c);
  if (f_df1) for (const char* c : {"rlnDefocusU", "rlnDefocusV", "rlnDefocusAngle"}) parts.columns.push_back(c);
  if (f_phase) parts.columns.push_back("rlnPhaseShift");
  if (f_bfac) parts.columns.push_back("rlnCtfBfactor");
  if (f_scale) parts.columns.push_back("rlnCtfScalefactor");
  parts.columns.push_back("rlnOpticsGroup");
  if (f_split) parts.columns.push_back("rlnRandomSubset");

  // Every value converted must be finite (a NaN would be written as "nan", or reach long(), which is
  // undefined for it); fields that mean integers must hold integers in their range.
  auto record_of = [](size_t r) { return "record " + std::to_string(r) + " (0-based)"; };
  auto num = [&](const NpyField* f, size_t r, size_t e = 0) {
    if (!f) return 0.0;
    const double v = a.number(r, *f, e);
    if (!std::isfinite(v))
      throw InputError(path, record_of(r) + ", field '" + excerpt(f->name) + "'", std::string(std::isnan(v) ? "NaN" : "infinite") +
                                                                   " where a number is needed");
    return v;
  };
  auto integer = [&](const NpyField* f, size_t r, double lo, double hi) {
    const double v = num(f, r);
    if (v != std::floor(v) || v < lo || v > hi)
      throw InputError(path, record_of(r) + ", field '" + excerpt(f->name) + "'",
                       format_fixed(v) + " is not an integer in [" + format_fixed(lo) + ", " + format_fixed(hi) + "]");
    return long(v);
  };
  // Optics groups keyed on what differs between them (as cryoSPARC stores it, per particle).
  using Key = std::tuple<double, double, double, double, double, double>;
  std::map<Key, int> groups;
  parts.rows.reserve(a.records);
  for (size_t r = 0; r < a.records; ++r) {
    std::string record = record_of(r);
    std::string stack = a.bytes(r, *f_path);
    if (!stack.empty() && stack[0] == '>') stack.erase(0, 1);
    if (stack.empty()) throw InputError(path, record, "empty blob/path");
    double idx = a.number(r, *f_idx);
    // Finite and within what a stack index can be (a float field may hold inf, which long() cannot take).
    if (!std::isfinite(idx) || idx < 0 || idx != std::floor(idx) || idx >= 2147483647.0)
      throw InputError(path, record, "bad blob/idx " + format_fixed(idx));
    Key key{num(f_psize, r), num(f_shape, r), num(f_kv, r), num(f_cs, r), num(f_q0, r), num(f_group, r)};
    auto g = groups.find(key);
    if (g == groups.end()) {
      int n = int(groups.size()) + 1;
      g = groups.emplace(key, n).first;
      std::vector<std::string> row = {"opticsGroup" + std::to_string(n), std::to_string(n)};
      if (f_psize) row.push_back(format_fixed(num(f_psize, r)));
      if (f_shape) row.push_back(std::to_string(integer(f_shape, r, 1, 65536)));
      row.push_back("2");
      if (f_kv) row.push_back(format_fixed(num(f_kv, r)));
      if (f_cs) row.push_back(format_fixed(num(f_cs, r)));
      if (f_q0) row.push_back(format_fixed(num(f_q0, r)));
      row.push_back("0");
      optics.rows.push_back(std::move(row));
    }

    char name[64];
    std::snprintf(name, sizeof name, "%06ld@", long(idx) + 1);
    std::vector<std::string> row = {name + stack};
    if (f_mic) {
      std::string mic = a.bytes(r, *f_mic);
      if (!mic.empty() && mic[0] == '>') mic.erase(0, 1);
      row.push_back(mic.empty() ? "None" : mic);
    }
    if (f_pose) {
      double w[3] = {num(f_pose, r, 0), num(f_pose, r, 1), num(f_pose, r, 2)};
      Mat3<double> A = transpose(axis_angle_to_matrix(w[0], w[1], w[2]));
      double rot, tilt, psi;
      matrix_to_euler(A, rot, tilt, psi);
      row.insert(row.end(), {format_fixed(rot), format_fixed(tilt), format_fixed(psi)});
    }
    if (f_shift) {
      double px = f_apsize ? num(f_apsize, r) : num(f_psize, r);
      row.insert(row.end(), {format_fixed(num(f_shift, r, 0) * px), format_fixed(num(f_shift, r, 1) * px)});
    }
    if (f_df1)
      row.insert(row.end(), {format_fixed(num(f_df1, r)), format_fixed(num(f_df2, r)),
                             format_fixed(f_ang ? rad2deg(num(f_ang, r)) : 0.0)});
    if (f_phase) row.push_back(format_fixed(rad2deg(num(f_phase, r))));
    if (f_bfac) row.push_back(format_fixed(num(f_bfac, r)));
    if (f_scale) row.push_back(format_fixed(num(f_scale, r)));
    row.push_back(std::to_string(g->second));
    if (f_split) row.push_back(std::to_string(integer(f_split, r, 0, 1) + 1));
    parts.rows.push_back(std::move(row));
  }
  return star;
}

void write_cs_subset(const std::string& cs_path, const std::string& source, const std::vector<size_t>& rows) {
  const NpyArray a = read_npy(source);
  if (a.fields.empty() || !a.field("uid")) throw InputError(source, "", "has no uid field: not a cryoSPARC .cs file");
  write_npy_records(cs_path, a, rows);
  std::vector<std::string> groups;
  for (const NpyField& f : a.fields) {
    const size_t slash = f.name.find('/');
    if (slash == std::string::npos) continue;  // uid
    const std::string g = f.name.substr(0, slash);
    if (std::find(groups.begin(), groups.end(), g) == groups.end()) groups.push_back(g);
  }
  // The layout of the .csg files cryoSPARC (v4) exports beside a particle .cs: `created` (a YAML
  // timestamp), `group` (name, type, title, description), `results` (one entry per field prefix: its metafile,
  // '>' + a name relative to the .csg, its num_items and its type particle.<data type>) and `version`.
  const std::string name = std::filesystem::path(cs_path).filename().string();
  auto quoted = [](const std::string& v) {  // YAML single quotes: '' stands for '
    std::string q = "'";
    for (char c : v) q += c == '\'' ? std::string("''") : std::string(1, c);
    return q + "'";
  };
  std::time_t now = std::time(nullptr);
  std::tm utc{};
  gmtime_r(&now, &utc);
  char created[40];
  std::strftime(created, sizeof created, "%Y-%m-%d %H:%M:%S.000000", &utc);
  std::string y = std::string("created: ") + created + "\ngroup:\n  description: " +
                  quoted("a particle subset written by cugmm") + "\n  name: particles\n  title: " +
                  quoted(std::filesystem::path(cs_path).stem().string()) + "\n  type: particle\nresults:\n";
  for (const std::string& g : groups) {
    // A prefix's data type is its name, except the per-class 3-D alignments of heterogeneous jobs
    // (alignments_class_N, data type alignments3D: cryosparc-tools' Datafield documentation).
    const std::string type = g.rfind("alignments_class_", 0) == 0 ? "alignments3D" : g;
    y += "  " + g + ":\n    metafile: " + quoted(">" + name) + "\n    num_items: " + std::to_string(rows.size()) +
         "\n    type: particle." + type + "\n";
  }
  y += "version: cugmm-0.1.0\n";
  write_file_atomic(std::filesystem::path(cs_path).replace_extension(".csg").string(), y);
}

}  // namespace cugmm::io
