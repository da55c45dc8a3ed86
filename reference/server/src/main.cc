#include "admin_cli.h"

int main(int argc, char** argv) { return signum::server::RunServerCli(argc, argv); }
