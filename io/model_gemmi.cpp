// Pseudo-atoms (PDB / mmCIF) through gemmi. The only translation unit that includes gemmi: its parser and
// writer are header-only and slow to compile, and GEMMI_WRITE_IMPLEMENTATION must be defined exactly once.
#define GEMMI_WRITE_IMPLEMENTATION
// Debian's gemmi-dev ships without the stb_sprintf it bundles upstream; std::snprintf gives the same text.
#define USE_STD_SNPRINTF
#include <cstdint>  // Debian 12's gemmi headers use std::uint8_t without including it (an error under GCC 13)
#include <gemmi/mmread.hpp>
#include <gemmi/to_cif.hpp>
#include <gemmi/to_mmcif.hpp>
#include <gemmi/to_pdb.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "io/input_file.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/model.h"
#include "io/model_frame.h"
#include "io/structure_read.h"

namespace cugmm::io {

namespace {

constexpr double kEightPi2 = 8 * M_PI * M_PI;  // B = 8 pi^2 s^2
constexpr double kPdbMaxB = 999.99;            // PDB's %6.2f B field
constexpr int kResiduesPerChain = 9999;        // PDB's 4-digit residue number
const char kChainNames[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr size_t kChains = sizeof kChainNames - 1;

bool is_pdb(const std::string& path) {
  std::string e = std::filesystem::path(path).extension().string();
  std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  if (e == ".pdb" || e == ".ent") return true;
  if (e == ".cif" || e == ".mmcif") return false;
  throw Error("pseudo-atoms: " + path + " must end in .pdb/.ent or .cif/.mmcif");
}

// One Gaussian per residue ("GAU", one atom), 9,999 residues per chain so every residue number fits PDB's
// columns in plain digits; atom serials past 99,999 are written in hybrid-36 by gemmi.
gemmi::Model make_model(const GaussianModel& m, const std::string& name, bool pdb, const std::string& path,
                        size_t& clamped) {
  const double off = map_frame_offset(m);
  double amax = 0;
  for (float a : m.amplitude) amax = std::max(amax, double(std::abs(a)));
  gemmi::Model model(name);
  for (size_t j = 0; j < m.size(); ++j) {
    const size_t c = j / kResiduesPerChain;
    if (c == model.chains.size()) {
      std::string cname = c < kChains ? std::string(1, kChainNames[c])
                                      : std::string(1, kChainNames[c / kChains - 1]) + kChainNames[c % kChains];
      model.chains.emplace_back(cname);
    }
    gemmi::Residue res;
    res.name = "GAU";
    res.seqid = gemmi::SeqId(int(j % kResiduesPerChain) + 1, ' ');
    res.het_flag = 'H';
    res.subchain = model.chains.back().name;
    res.entity_id = "1";
    gemmi::Atom a;
    a.name = "C";
    a.element = gemmi::El::C;
    a.pos = gemmi::Position(m.x[j] + off, m.y[j] + off, m.z[j] + off);
    if (pdb && !(std::max({a.pos.x, a.pos.y, a.pos.z}) < 9999.9995 && std::min({a.pos.x, a.pos.y, a.pos.z}) > -999.9995))
      throw Error("pseudo-atoms: Gaussian " + std::to_string(j + 1) + " lies outside the coordinates PDB can hold; "
                  "write " + path + " as .cif");
    a.occ = float(amax > 0 ? m.amplitude[j] / amax : 0.0);
    double b = kEightPi2 * double(m.width[j]) * m.width[j];
    if (pdb && b > kPdbMaxB) b = kPdbMaxB, ++clamped;
    a.b_iso = float(b);
    res.atoms.push_back(a);
    model.chains.back().residues.push_back(std::move(res));
  }
  return model;
}

void write_structure(const std::string& path, const std::vector<const GaussianModel*>& frames) {
  const bool pdb = is_pdb(path);
  if (frames.empty()) throw Error("pseudo-atoms for " + path + ": no models to write");
  const GaussianModel& first = *frames[0];
  for (const GaussianModel* f : frames) {
    check_model(*f, path, true);
    if (f->size() != first.size() || f->box_size != first.box_size || f->pixel_size != first.pixel_size)
      throw Error("pseudo-atom trajectory " + path + ": frames differ in Gaussian count, box size or pixel size");
  }
  if (pdb && first.size() > kChains * kResiduesPerChain)
    throw Error("pseudo-atoms: " + std::to_string(first.size()) + " Gaussians do not fit a PDB file; write " + path +
                " as .cif");
  gemmi::Structure st;
  st.name = std::filesystem::path(path).stem().string();
  const double edge = first.box_size * first.pixel_size;  // the map's cell, so viewers can relate the two
  st.cell.set(edge, edge, edge, 90, 90, 90);
  st.spacegroup_hm = "P 1";
  size_t clamped = 0;
  for (size_t f = 0; f < frames.size(); ++f) st.models.push_back(make_model(*frames[f], std::to_string(f + 1), pdb, path, clamped));
  // One non-polymer entity, written by hand: gemmi's setup_entities() makes every residue its own subchain
  // and compares them all (minutes at 10^5 Gaussians).
  gemmi::Entity ent("1");
  ent.entity_type = gemmi::EntityType::NonPolymer;
  for (const gemmi::Chain& ch : st.models[0].chains) ent.subchains.push_back(ch.name);
  st.entities.push_back(ent);
  std::ostringstream os;
  if (pdb) {
    gemmi::PdbWriteOptions opt;
    opt.seqres_records = opt.ssbond_records = opt.link_records = opt.cispep_records = false;
    gemmi::write_pdb(st, os, opt);
  } else {
    gemmi::cif::write_cif_to_stream(os, gemmi::make_mmcif_document(st));
  }
  if (clamped > 0)
    log_warn(path + ": " + std::to_string(clamped) + " of " + std::to_string(first.size() * frames.size()) +
             " B-factors exceed PDB's 999.99 (width > " + std::to_string(std::sqrt(kPdbMaxB / kEightPi2)).substr(0, 4) +
             " A) and were clamped; write .cif to keep them");
  write_file_atomic(path, os.str());
}

}  // namespace

void write_pseudo_atoms(const std::string& path, const GaussianModel& m) { write_structure(path, {&m}); }

void write_pseudo_atom_trajectory(const std::string& path, const std::vector<GaussianModel>& frames) {
  std::vector<const GaussianModel*> p;
  for (const GaussianModel& f : frames) p.push_back(&f);
  write_structure(path, p);
}

GaussianModel read_pseudo_atoms(const std::string& path, int box_size, double pixel_size, double amplitude_scale) {
  if (box_size <= 0 || !(pixel_size > 0))
    throw InputError(path, "", "pseudo-atoms are in the map frame: reading them needs the box size and pixel size");
  if (!std::filesystem::is_regular_file(path)) throw InputError(path, "", "cannot open");
  const gemmi::Structure st = read_coordinate_records(path);
  if (st.models.empty()) throw InputError(path, "", "no atoms");
  GaussianModel m;
  m.box_size = box_size, m.pixel_size = pixel_size;
  const double off = map_frame_offset(m);
  size_t n = 0;
  // A trajectory gives its first frame.
  for (const gemmi::Chain& ch : st.models[0].chains)
    for (const gemmi::Residue& res : ch.residues)
      for (const gemmi::Atom& a : res.atoms) {
        ++n;
        const std::string rec = "atom " + std::to_string(n) + " (chain " + ch.name + ", residue " +
                                std::to_string(*res.seqid.num) + ")";
        if (!(a.b_iso > 0)) throw InputError(path, rec, "B-factor " + std::to_string(a.b_iso) + " is not positive");
        m.x.push_back(float(a.pos.x - off));
        m.y.push_back(float(a.pos.y - off));
        m.z.push_back(float(a.pos.z - off));
        m.amplitude.push_back(float(a.occ * amplitude_scale));
        m.width.push_back(float(std::sqrt(a.b_iso / kEightPi2)));
      }
  if (m.size() == 0) throw InputError(path, "", "no atoms");
  return m;
}

}  // namespace cugmm::io
