// Compiles one public header alone (DVOICE_TEST_HEADER) as C++.
#include DVOICE_TEST_HEADER

int main() {
  return 0;
}
