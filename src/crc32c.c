/* crc32c.c - CRC-32C: slicing-by-8 tables, and the SSE4.2 instruction where the CPU has it. See crc32c.h. */
#include "src/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t g_crc_tab[8][256];
static int g_crc_hw; /* the CPU has SSE4.2's crc32 instruction */
static pthread_once_t g_crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    g_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        g_crc_tab[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            g_crc_tab[t][i] = (g_crc_tab[t - 1][i] >> 8) ^ g_crc_tab[0][g_crc_tab[t - 1][i] & 0xff];
}

uint32_t bv_crc32c_sw(uint32_t crc, const void *data, size_t n) {
    pthread_once(&g_crc_once, crc_init);
    const uint8_t *p = data;
    uint32_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint32_t lo = (uint32_t)w ^ c, hi = (uint32_t)(w >> 32);
        c = g_crc_tab[7][lo & 0xff] ^ g_crc_tab[6][(lo >> 8) & 0xff] ^ g_crc_tab[5][(lo >> 16) & 0xff] ^
            g_crc_tab[4][lo >> 24] ^ g_crc_tab[3][hi & 0xff] ^ g_crc_tab[2][(hi >> 8) & 0xff] ^
            g_crc_tab[1][(hi >> 16) & 0xff] ^ g_crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ g_crc_tab[0][(c ^ *p++) & 0xff];
    return ~c;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc32c_hw(uint32_t crc, const void *data, size_t n) {
    const uint8_t *p = data;
    uint64_t c = ~crc;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = __builtin_ia32_crc32di(c, w);
        p += 8;
        n -= 8;
    }
    uint32_t c32 = (uint32_t)c;
    while (n--) c32 = __builtin_ia32_crc32qi(c32, *p++);
    return ~c32;
}
#endif

uint32_t bv_crc32c(uint32_t crc, const void *data, size_t n) {
    pthread_once(&g_crc_once, crc_init);
#if defined(__x86_64__)
    if (g_crc_hw) return crc32c_hw(crc, data, n);
#endif
    return bv_crc32c_sw(crc, data, n);
}

uint32_t bv_crc32c_mask(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xa282ead8u; }

uint32_t bv_crc32c_masked(const void *data, size_t n) { return bv_crc32c_mask(bv_crc32c(0, data, n)); }
