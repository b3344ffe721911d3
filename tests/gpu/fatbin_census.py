"""Independent count of the fatbins in a host ELF's .nv_fatbin section (a cross-check for
gpuos inspect): fatbins, entries per kind and arch, kernels' cubins for one arch."""
import collections
import struct
import sys

lib, want = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 90
d = open(lib, "rb").read()
shoff = struct.unpack_from("<Q", d, 0x28)[0]
shentsize, shnum, shstrndx = struct.unpack_from("<HHH", d, 0x3A)
secs = [struct.unpack_from("<IIQQQQIIQQ", d, shoff + i * shentsize) for i in range(shnum)]
stroff = secs[shstrndx][4]
name = lambda s: d[stroff + s[0]:d.index(b"\0", stroff + s[0])].decode()
for s in secs:
    if name(s) not in (".nv_fatbin", "__nv_relfatbin"):
        continue
    off, size = s[4], s[5]
    pos, nfat, skipped, kinds, with_want = off, 0, 0, collections.Counter(), 0
    while pos + 16 <= off + size:
        magic, ver, hs, fs = struct.unpack_from("<IHHQ", d, pos)
        if magic != 0xBA55ED50:
            pos += 8
            skipped += 8
            continue
        nfat += 1
        e, end, has = pos + hs, pos + hs + fs, False
        while e + 64 <= end:
            kind, _, ehs, esz = struct.unpack_from("<HHIQ", d, e)
            arch = struct.unpack_from("<I", d, e + 28)[0]
            kinds[(kind, arch)] += 1
            has |= kind == 2 and arch == want
            e += ehs + esz
        with_want += has
        pos = (end + 7) & ~7
    print(f"{name(s)}: {size} bytes, {nfat} fatbins, {skipped} bytes skipped, "
          f"{with_want} with an sm_{want} cubin")
    print("  entries (kind 1=ptx 2=cubin, arch):", dict(sorted(kinds.items())))
