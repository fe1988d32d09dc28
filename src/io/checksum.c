/* CRC-32 checksums (zlib's) of buffers and datasets, for run fingerprints. */
#include <zlib.h>

#include "pathfinder/io.h"

uint32_t pf_crc32(uint32_t crc, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    uLong c = crc;
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)c;
}

uint32_t pf_dataset_checksum(const pf_dataset *d)
{
    uLong crc = crc32(0L, Z_NULL, 0);
    size_t bytes = d->n * (size_t)d->dim * sizeof(float);
    for (size_t off = 0; off < bytes; off += 1u << 30) {
        size_t chunk = bytes - off < (1u << 30) ? bytes - off : (1u << 30);
        crc = crc32(crc, (const unsigned char *)d->x + off, (uInt)chunk);
    }
    if (d->labels) crc = crc32(crc, (const unsigned char *)d->labels, (uInt)(d->n * sizeof(int)));
    if (d->targets)
        crc = crc32(crc, (const unsigned char *)d->targets,
                    (uInt)(d->n * (size_t)d->n_targets * sizeof(float)));
    return (uint32_t)crc;
}
