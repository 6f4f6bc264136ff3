/**
 * Grant-table ABI constants (Xen public/grant_table.h): GNTTABOP_* sub-operations,
 * GTF_* entry flags, GNTST_* status codes, GNTCOPY_* copy flags. Checked against
 * Debian libxen-dev by test/unit/xen-public-headers.test.ts.
 */
export const GNTTABOP_map_grant_ref = 0;
export const GNTTABOP_unmap_grant_ref = 1;
export const GNTTABOP_setup_table = 2;
export const GNTTABOP_dump_table = 3;
export const GNTTABOP_transfer = 4;
export const GNTTABOP_copy = 5;
export const GNTTABOP_query_size = 6;
export const GNTTABOP_unmap_and_replace = 7;
export const GNTTABOP_set_version = 8;
export const GNTTABOP_get_status_frames = 9;
export const GNTTABOP_get_version = 10;
export const GNTTABOP_swap_grant_ref = 11;
export const GNTTABOP_cache_flush = 12;

export const GTF_invalid = 0;
export const GTF_permit_access = 1;
export const GTF_accept_transfer = 2;
export const GTF_transitive = 3;
export const GTF_type_mask = 3;
export const GTF_readonly = 0x4;
export const GTF_reading = 0x8;
export const GTF_writing = 0x10;

export const GNTST_okay = 0;
export const GNTST_general_error = -1;
export const GNTST_bad_domain = -2;
export const GNTST_bad_gntref = -3;
export const GNTST_bad_handle = -4;
export const GNTST_bad_virt_addr = -5;
export const GNTST_bad_dev_addr = -6;
export const GNTST_no_device_space = -7;
export const GNTST_permission_denied = -8;
export const GNTST_bad_page = -9;
export const GNTST_bad_copy_arg = -10;
export const GNTST_address_too_big = -11;
export const GNTST_eagain = -12;

export const GNTCOPY_source_gref = 1;
export const GNTCOPY_dest_gref = 2;
