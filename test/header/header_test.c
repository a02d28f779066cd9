/* Compiles one public header alone (DVOICE_TEST_HEADER), first thing. */
#include DVOICE_TEST_HEADER

int main(void) {
  return 0;
}
