/*
 * spec/fuzz/check.h: the fuzz targets' CHECK. Beyond crashes, each target
 * checks a promise per input; a broken one is named, with the target and
 * the line, and aborts, so that libFuzzer keeps the input that broke it.
 * A target defines FUZZ_NAME before including this.
 */
#ifndef OWL_FUZZ_CHECK_H
#define OWL_FUZZ_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond, what)                                                                 \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      fprintf(stderr, "%s: broken promise: %s (%s:%d)\n", FUZZ_NAME, what, __FILE__, __LINE__); \
      abort();                                                                            \
    }                                                                                     \
  } while (0)

#endif
