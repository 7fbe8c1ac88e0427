/* Writes this run's identity into DATA_FILE (in the source tree), waits long enough for a
 * concurrent run of another variant to do the same, and reads it back: another run's data in
 * the file is the race cfgmx's copies of the source prevent. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(void) {
    char want[128], got[128] = {0};
    snprintf(want, sizeof want, "run %ld of %s", (long)getpid(), DATA_FILE);
    FILE *f = fopen(DATA_FILE, "w");
    if (!f || fputs(want, f) < 0 || fclose(f) != 0) {
        fprintf(stderr, "FAIL: cannot write %s\n", DATA_FILE);
        return 1;
    }
    usleep(400000);
    f = fopen(DATA_FILE, "r");
    size_t n = f ? fread(got, 1, sizeof got - 1, f) : 0;
    if (f)
        fclose(f);
    if (n == 0 || strcmp(got, want) != 0) {
        fprintf(stderr, "FAIL: %s holds \"%s\", not this run's \"%s\"\n", DATA_FILE, got, want);
        return 1;
    }
    printf("read back: %s\n", got);
    return 0;
}
