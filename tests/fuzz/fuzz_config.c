/* A run folder's config.json, read as `pathfinder sweep` reads it on resume
 * (src/cli/cmd_sweep.c check_config): pf_read_file, cJSON_Parse, the
 * "settings" object, and each section compared with this run's settings.
 * There is no library function for that yet, so the harness does the same
 * calls in the same order. */
#include "fuzz.h"

#include <cJSON.h>

static const char settings_text[] =
    "{\"data\":{\"spec\":\"mnist\",\"name\":\"mnist\",\"train_subset\":20000,\"std\":1},"
    "\"model\":{\"architecture\":\"784,128,10\",\"bias\":true,\"seed\":0},"
    "\"protocol\":{\"optimizer\":\"adam\",\"lr\":0.0015,\"reset_optimizer\":true},"
    "\"grid\":{\"beta\":\"0,0.02:0.09:0.0005\",\"direction\":\"up\",\"points\":142}}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static cJSON *settings;
    if (!settings && !(settings = cJSON_Parse(settings_text))) abort();
    const char *path = fuzz_file(0, data, size);
    char *text = NULL;
    pf_error err;
    pf_error_clear(&err);
    int rc = pf_read_file(path, &text, NULL, 1 << 24, &err);
    fuzz_check_error(rc, &err, path, NULL);
    if (rc) {
        if (text) abort();
        return 0;
    }
    cJSON *old = cJSON_Parse(text);
    free(text);
    cJSON *olds = old ? cJSON_GetObjectItemCaseSensitive(old, "settings") : NULL;
    const char *sections[] = {"data", "model", "protocol", "grid"};
    for (int i = 0; olds && i < 4; i++) {
        cJSON *x = cJSON_GetObjectItemCaseSensitive(olds, sections[i]);
        cJSON *y = cJSON_GetObjectItemCaseSensitive(settings, sections[i]);
        if (!x || !y || !cJSON_Compare(x, y, 1)) break;
    }
    cJSON_Delete(old);
    return 0;
}
