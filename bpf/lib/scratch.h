/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * A scratch slot: where a record is put together when it cannot be written
 * straight into the ring buffer (paged data, a tag to put back, made-up
 * headers, user extensions, user-space packets). The header and the
 * sections sit right before the packet bytes, so that one copy hands the
 * whole record over whatever sections it has.
 */
#ifndef NETCAP_LIB_SCRATCH_H
#define NETCAP_LIB_SCRATCH_H

/* The user's struct, in 8-byte units so that the packet stays aligned. */
#ifdef NETCAP_EXT_ACTION
#define NETCAP_USER_SIZE ((sizeof(struct xcap_user_extend) + 7) & ~7UL)
_Static_assert(sizeof(struct xcap_user_extend) <= NETCAP_USER_MAX,
	       "struct xcap_user_extend is larger than netcap's limit (NETCAP_USER_MAX bytes)");
/* Referenced so that the object's BTF describes the struct to user space. */
struct xcap_user_extend netcap_user_layout = {};
#else
#define NETCAP_USER_SIZE 0
#endif

/* Every section at once: the room scratch slots keep in front of the packet. */
#define NETCAP_SECTIONS_MAX                                                   \
	(sizeof(struct netcap_section_stack) + sizeof(struct netcap_section_drop) + \
	 4 * sizeof(struct netcap_section_value) +                            \
	 sizeof(struct netcap_section_fields) +                               \
	 sizeof(struct netcap_section_ct) +                                   \
	 sizeof(struct netcap_section_nft) +                                  \
	 sizeof(struct netcap_section_user) + NETCAP_USER_SIZE)

struct netcap_scratch {
	/* The header and sections end where data begins; they start
	 * NETCAP_SECTIONS_MAX - sections_len bytes in. */
	__u8 head[sizeof(struct netcap_event) + NETCAP_SECTIONS_MAX];
	__u8 data[NETCAP_SCRATCH_DATA];
};

#endif /* NETCAP_LIB_SCRATCH_H */
