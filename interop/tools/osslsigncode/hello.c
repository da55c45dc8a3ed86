/* The unsigned PE the osslsigncode and jsign rows sign: a console program built with mingw-w64. */
#include <stdio.h>

int main(void) {
  puts("hello from the Signum Harness interop matrix");
  return 0;
}
