/*
 * netcap links libpcap only to compile filters (pcap_open_dead and
 * pcap_compile); it never lists or opens a capture device. Debian's static
 * libpcap can also capture from D-Bus, and that capture source would pull
 * libdbus and libsystemd into a static binary. These two definitions stand
 * in for it, so the linker never loads it: each answers "not a D-Bus
 * device, and there are none". Linked only into the static build.
 */
#include <stddef.h>

struct pcap;
struct pcap_if_list;

struct pcap *dbus_create(const char *device, char *errbuf, int *is_ours)
{
	(void)device;
	(void)errbuf;
	*is_ours = 0;
	return NULL;
}

int dbus_findalldevs(struct pcap_if_list *devices, char *errbuf)
{
	(void)devices;
	(void)errbuf;
	return 0;
}
