/* SPDX-License-Identifier: GPL-2.0 OR BSD-2-Clause */
/*
 * libbpf's usdt.bpf.h includes <linux/errno.h>, which needs the kernel's
 * uapi headers; netcap builds against vmlinux.h alone (no kernel headers on
 * the user's machine), so the few codes it uses are defined here.
 */
#ifndef NETCAP_LINUX_ERRNO_H
#define NETCAP_LINUX_ERRNO_H
#define ENOENT 2
#define ESRCH 3
#define E2BIG 7
#define EINVAL 22
#endif
