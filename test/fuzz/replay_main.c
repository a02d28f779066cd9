/*
 * Corpus replay driver, linked into every fuzz target when no fuzzing engine
 * is selected (gcc builds). Each argument is a file or a directory of files;
 * every file is fed once to LLVMFuzzerTestOneInput, so the corpus runs as an
 * ordinary regression test. Prints "replayed N inputs".
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static long replayed;

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf;
  long n;
  if (f == NULL) {
    perror(path);
    return 1;
  }
  fseek(f, 0, SEEK_END);
  n = ftell(f);
  fseek(f, 0, SEEK_SET);
  /* Copy into an exact-size heap block so sanitizers catch over-reads. */
  buf = malloc(n > 0 ? (size_t)n : 1);
  if (buf == NULL || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
    fclose(f);
    free(buf);
    fprintf(stderr, "%s: read failed\n", path);
    return 1;
  }
  fclose(f);
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  free(buf);
  replayed++;
  return 0;
}

static int run_path(const char *path) {
  struct stat st;
  DIR *d;
  struct dirent *e;
  int rv = 0;
  if (stat(path, &st) != 0) {
    perror(path);
    return 1;
  }
  if (!S_ISDIR(st.st_mode)) {
    return run_file(path);
  }
  if ((d = opendir(path)) == NULL) {
    perror(path);
    return 1;
  }
  while ((e = readdir(d)) != NULL) {
    char sub[4096];
    if (e->d_name[0] == '.') {
      continue;
    }
    snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
    rv |= run_path(sub);
  }
  closedir(d);
  return rv;
}

int main(int argc, char **argv) {
  int rv = 0;
  if (LLVMFuzzerInitialize) {
    LLVMFuzzerInitialize(&argc, &argv);
  }
  for (int i = 1; i < argc; i++) {
    rv |= run_path(argv[i]);
  }
  printf("replayed %ld inputs\n", replayed);
  return rv != 0 || replayed == 0;
}
