/* One program for every test of the project: `t ok` passes at once, `t sleep N` passes after
 * N seconds (the slow test, and the one a short per-test timeout must stop). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc > 2 && strcmp(argv[1], "sleep") == 0) {
    sleep((unsigned)atoi(argv[2]));
    return 0;
  }
  return argc > 1 && strcmp(argv[1], "ok") == 0 ? 0 : 1;
}
