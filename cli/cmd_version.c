#include <cblas.h>
#include <hdf5.h>
#include <jansson.h>
#include <jpeglib.h>
#include <mpi.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <zlib.h>

#include "cli/cli.h"
#include "src/common.h"
#include "src/cpu.h"

int bv_cmd_version(int argc, char **argv) {
    if (bv_cli_wants_help(argc, argv)) {
        printf("usage: bitvla version\n\nPrint the bitvla version and the libraries it was built with.\n");
        return 0;
    }
    if (argc > 1) {
        fprintf(stderr, "bitvla version: unexpected argument '%s' (takes none)\n", argv[1]);
        return 2;
    }
    unsigned hmaj, hmin, hrel;
    H5get_libversion(&hmaj, &hmin, &hrel);
    int mpi_major = 0, mpi_minor = 0;
    MPI_Get_version(&mpi_major, &mpi_minor);
    printf("bitvla %s\n", BV_VERSION_STRING);
    printf("  openblas: %s (parallel=%d: %s), threads=%d\n", openblas_get_config(), openblas_get_parallel(),
           openblas_get_parallel() == 2 ? "openmp" : "NOT the OpenMP build", bv_num_threads());
    printf("  cpu: %s\n", bv_cpu_describe());
    printf("  hdf5 %u.%u.%u, mpi %d.%d, jansson %s, zlib %s, libpng %s, libjpeg %d\n", hmaj, hmin, hrel, mpi_major,
           mpi_minor, JANSSON_VERSION, zlibVersion(), png_get_libpng_ver(NULL), JPEG_LIB_VERSION);
    return 0;
}
