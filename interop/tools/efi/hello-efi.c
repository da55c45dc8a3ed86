/* The unsigned UEFI application the sbsign row signs: a PE32+ image with the EFI application
 * subsystem, built by mingw-w64 without a C library (no gnu-efi needed). It returns EFI_SUCCESS
 * without touching the system table; it only has to be a well-formed image for sbsign/sbverify
 * and osslsigncode. */
typedef unsigned long long efi_status;

efi_status efi_main(void *image_handle, void *system_table) {
  (void)image_handle;
  (void)system_table;
  return 0;
}
