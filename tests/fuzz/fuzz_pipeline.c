/* fuzz_pipeline.c - libFuzzer over what one change message goes through
 * before a sink sees it: body handling + decoding (dv_decode), the mapping
 * verdict and document (map_change) and the Web API rendering
 * (docjson_render). The input format (a selector byte for content type,
 * truncation hint, mapping configuration and annotations, then the body)
 * and the invariants are in pipeline_harness.h. Seeds:
 * tests/fuzz/corpus/pipeline/ (every golden case with several selectors,
 * and the inputs that once broke an invariant); dictionary pipeline.dict. */
#include "pipeline_harness.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  pipeline_harness_run(data, size);
  return 0;
}
