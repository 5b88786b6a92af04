#!/usr/bin/env python3
"""Writes the crafted io_* files of tests/malformed/io.cases (run from anywhere: python3 make_io_files.py [dir]).

Every file is tiny and made from bytes here, without numpy, so the corpus can be rebuilt anywhere. The
unit tests (tests/test_io_*.cpp) call this script too, with a scratch directory."""
import os
import struct
import sys

out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
os.makedirs(out, exist_ok=True)


def write(name, data):
    with open(os.path.join(out, name), 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)


def tiff(width, height, compression, strip_bytes, total=8192, tile=None):
    """A little-endian, one-strip (or one-tile: tile=(width, length)), 8-bit greyscale TIFF whose header
    claims width x height pixels, its data at byte 200."""
    tags = [(256, 4, width), (257, 4, height), (258, 3, 8), (259, 3, compression), (262, 3, 1)]
    if tile:
        tags += [(277, 3, 1), (322, 4, tile[0]), (323, 4, tile[1]), (324, 4, 200), (325, 4, strip_bytes)]
    else:
        tags += [(273, 4, 200), (277, 3, 1), (278, 4, height), (279, 4, strip_bytes)]
    ifd = struct.pack('<H', len(tags))
    for tag, typ, val in tags:
        ifd += struct.pack('<HHI', tag, typ, 1) + (struct.pack('<HH', val, 0) if typ == 3 else struct.pack('<I', val))
    ifd += struct.pack('<I', 0)
    data = b'II*\0' + struct.pack('<I', 8) + ifd
    return data + b'\0' * (total - len(data))


def tiff_shared(width, height, compression, strips=1, pages=1, data_bytes=1024):
    """A little-endian 8-bit greyscale TIFF of `pages` pages of `strips` strips each, every strip of every
    page naming the same `data_bytes` bytes (a deflate stream's two-byte header, then zeros)."""
    rps = (height + strips - 1) // strips
    ifd_bytes = 2 + 12 * 9 + 4
    arrays = 8 * strips if strips > 1 else 0
    data = 8 + pages * (ifd_bytes + arrays)
    out = b'II*\0' + struct.pack('<I', 8)
    for p in range(pages):
        at = 8 + p * (ifd_bytes + arrays)
        offs, cnts = (at + ifd_bytes, at + ifd_bytes + 4 * strips) if strips > 1 else (data, data_bytes)
        tags = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, compression),
                (262, 3, 1, 1), (273, 4, strips, offs), (277, 3, 1, 1), (278, 4, 1, rps), (279, 4, strips, cnts)]
        ifd = struct.pack('<H', len(tags))
        for tag, typ, count, val in tags:
            ifd += struct.pack('<HHI', tag, typ, count) + (struct.pack('<HH', val, 0) if typ == 3 else struct.pack('<I', val))
        ifd += struct.pack('<I', at + ifd_bytes + arrays if p + 1 < pages else 0)
        out += ifd
        if strips > 1:
            out += struct.pack('<%dI' % strips, *[data] * strips) + struct.pack('<%dI' % strips, *[data_bytes] * strips)
    assert len(out) == data
    return out + b'\x78\x9c' + b'\0' * (data_bytes - 2)


def mrc(nx, ny, nz, mode=2, machst=b'\x44\x44\0\0', values=None, extra=b'', ispg=0, mz=1, cella=1.0):
    """An MRC 2014 header (little-endian fields) and data; `values` float32 list for mode 2."""
    h = bytearray(1024)
    struct.pack_into('<4i', h, 0, nx, ny, nz, mode)
    struct.pack_into('<3i', h, 28, nx, ny, mz)
    struct.pack_into('<3f', h, 40, cella * nx, cella * ny, cella * mz)
    struct.pack_into('<3f', h, 52, 90, 90, 90)
    struct.pack_into('<3i', h, 64, 1, 2, 3)
    struct.pack_into('<i', h, 88, ispg)
    struct.pack_into('<i', h, 108, 20140)
    h[208:212] = b'MAP '
    h[212:216] = machst
    n = nx * ny * nz
    if values is None:
        values = [float(i % 5) for i in range(n)]
    body = struct.pack('<%df' % n, *values) if mode == 2 else bytes(n * {0: 1, 1: 2, 6: 2, 12: 2}[mode])
    return bytes(h) + body + extra


# TIFF: 8 KB claiming 65535 x 65535 (defect 6), uncompressed and "deflate" (impossible ratio).
write('io_huge.tif', tiff(65535, 65535, 1, 8000))
write('io_huge_deflate.tif', tiff(65535, 65535, 8, 100))
# TIFF: a 16 x 16 page in one tile 2^30 pixels wide (libtiff would be asked for a 16 GB tile buffer), one
# of 4096 x 4096 from 256 bytes, and a valid one whose single 32 x 32 tile reaches past the page's edges.
write('io_tile_2e30.tif', tiff(16, 16, 1, 256, total=456, tile=(1 << 30, 16)))
write('io_tile_4096.tif', tiff(16, 16, 1, 256, total=456, tile=(4096, 4096)))
write('io_tile_32.tif', tiff(16, 16, 1, 1024, total=1224, tile=(32, 32)))
# TIFF: strips that all name the same bytes (held in total 64 times over, uncompressed and deflate), and
# 8 deflate pages sharing one strip: each passed when what strips hold was summed without the file's length.
write('io_shared_strips.tif', tiff_shared(1024, 1024, 1, strips=256, data_bytes=5000))
write('io_shared_strips_deflate.tif', tiff_shared(8192, 8192, 8, strips=16, data_bytes=7000))
write('io_shared_pages.tif', tiff_shared(1024, 1024, 8, pages=8, data_bytes=1024))
# MRC: fields little-endian, MACHST saying big-endian (defect 11: "byte order", not "mode 33554432").
write('io_byteorder.mrcs', mrc(8, 8, 2, machst=b'\x11\x11\0\0'))
# MRC longer than its header says (defect 13).
write('io_long.mrcs', mrc(8, 8, 2, extra=b'\0' * 256))
# A stack with a 3e38 pixel in image 2 (finite, but sums of it overflow) and a NaN stack.
vals = [float(i % 5) for i in range(128)]
vals[64 + 9] = 3e38
write('io_huge_pixel.mrcs', mrc(8, 8, 2, values=vals))
vals = [float(i % 5) for i in range(128)]
vals[64 + 3] = float('nan')
write('io_nan_pixel.mrcs', mrc(8, 8, 2, values=vals))
# MRC whose NX x NY x NZ wraps 64 bits in bytes (2^21 cubed x 4) and one that claims 2 GB in 1 KB.
write('io_wrap.mrc', mrc(1, 1, 1)[:0] + bytes(struct.pack('<4i', 2097152, 2097152, 2097152, 2)) + mrc(1, 1, 1)[16:])
write('io_claims_2gb.mrc', mrc(1, 1, 1)[:0] + bytes(struct.pack('<4i', 1024, 1024, 512, 2)) + mrc(1, 1, 1)[16:])
write('io_ok.mrcs', mrc(8, 8, 2))

STAR_OPTICS = ("\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnOpticsGroupName #2\n"
               "_rlnImagePixelSize #3\n_rlnImageSize #4\n_rlnImageDimensionality #5\n_rlnVoltage #6\n"
               "_rlnSphericalAberration #7\n_rlnAmplitudeContrast #8\n1 g1 {px} 8 2 300 2.7 0.1\n\n")
STAR_PARTS = ("\n# version 30001\n\ndata_particles\n\nloop_\n_rlnImageName #1\n_rlnAngleRot #2\n_rlnAngleTilt #3\n"
              "_rlnAnglePsi #4\n_rlnOriginXAngst #5\n_rlnOriginYAngst #6\n_rlnDefocusU #7\n_rlnDefocusV #8\n"
              "_rlnDefocusAngle #9\n_rlnOpticsGroup #10\n_rlnRandomSubset #11\n")


def star(px='1.5', stack='io_ok.mrcs', subsets=(1, 2)):
    rows = ''.join('%d@%s 0 %d 0 0 0 15000 14800 10 1 %s\n' % (i + 1, stack, 30 * i, s) for i, s in enumerate(subsets))
    return STAR_OPTICS.format(px=px) + STAR_PARTS + rows


write('io_ok.star', star())
write('io_px_zero.star', star(px='0'))
write('io_px_negative.star', star(px='-1.5'))
write('io_subset3.star', star(subsets=(1, 3)))
write('io_stack_dir.star', star(stack='io_a_directory.mrcs'))
write('io_stack_devzero.star', star(stack='/dev/zero'))
write('io_stack_huge_pixel.star', star(stack='io_huge_pixel.mrcs'))
write('io_stack_nan_pixel.star', star(stack='io_nan_pixel.mrcs'))
write('io_stack_long.star', star(stack='io_long.mrcs'))
for d in ('io_a_directory.mrcs', 'io_a_directory.star'):
    os.makedirs(os.path.join(out, d), exist_ok=True)
    with open(os.path.join(out, d, 'README'), 'w') as f:
        f.write('A directory named like a file: the io corpus gives it where a file is expected.\n')
# A binary blob as a STAR file: the error must not echo it.
write('io_binary.star', b'data_\nloop_\n_rlnImageName\n_rlnAngleRot\n1@io_ok.mrcs ' + bytes(range(1, 32)) * 40 + b'\n')


def npy(fields, rows):
    """A structured .npy (cryoSPARC .cs) of float32/uint32/bytes fields; rows are tuples in field order."""
    descr = '[' + ', '.join("('%s', '%s')" % f for f in fields) + ']'
    header = "{'descr': %s, 'fortran_order': False, 'shape': (%d,), }" % (descr, len(rows))
    header += ' ' * ((64 - (10 + len(header) + 1) % 64) % 64) + '\n'
    body = b''
    for r in rows:
        for (name, t), v in zip(fields, r):
            if t == '<f4':
                body += struct.pack('<f', v)
            elif t == '<u4':
                body += struct.pack('<I', v)
            else:
                n = int(t[2:])
                body += v.ljust(n, b'\0')
    return b'\x93NUMPY\x01\x00' + struct.pack('<H', len(header)) + header.encode() + body


CS_FIELDS = [('blob/path', '|S16'), ('blob/idx', '<u4'), ('blob/shape', '<f4'), ('blob/psize_A', '<f4'),
             ('alignments3D/pose', '<f4'), ('alignments3D/split', '<f4')]
nan = float('nan')
# NaN where integers are meant (long(NaN) is undefined behaviour): blob/shape, then alignments3D/split.
write('io_nan_shape.cs', npy(CS_FIELDS[:4], [(b'io_ok.mrcs', 0, nan, 1.5)]))
write('io_nan_split.cs', npy(CS_FIELDS[:4] + CS_FIELDS[5:], [(b'io_ok.mrcs', 0, 8.0, 1.5, nan)]))
write('io_nan_psize.cs', npy(CS_FIELDS[:4], [(b'io_ok.mrcs', 0, 8.0, nan)]))
