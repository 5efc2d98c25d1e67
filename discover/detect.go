package discover

import (
	"os"
	"path/filepath"
	"strings"
)

// azureChassisTag is the chassis asset tag of every Azure VM.
const azureChassisTag = "7783-7084-3265-9085-8269-3286-77"

// dmiFiles are the world-readable DMI files detection reads.
var dmiFiles = []string{"sys_vendor", "bios_vendor", "bios_version", "product_name", "board_asset_tag", "chassis_asset_tag"}

// Detect decides the platform from local evidence only: environment
// variables and files under sysfs. It sends nothing over the network. The
// evidence explains the decision, one line each.
func Detect(o Options) (Platform, []string) {
	return newDiscoverer(o).detect()
}

func (d *discoverer) detect() (Platform, []string) {
	var ev []string
	note := func(s string) { ev = append(ev, s) }
	if p, ok := d.detectContainer(note); ok {
		return p, ev
	}
	dmi := d.readDMI()
	if len(dmi.values) == 0 {
		note("no DMI files readable under " + filepath.Join(d.sysRoot, "devices/virtual/dmi/id") + " (a container often has none)")
	}
	if p, ok := d.detectCloud(dmi, note); ok {
		return p, ev
	}
	if len(dmi.values) > 0 {
		note("DMI names no known cloud (sys_vendor " + quote(dmi.values["sys_vendor"]) + ", product_name " + quote(dmi.values["product_name"]) + ")")
	}
	note("no platform detected: using local interfaces only, no metadata service is contacted (name one in Options.Platform)")
	return Local, ev
}

// detectContainer recognises ECS tasks and Kubernetes pods from their
// environment. Containers come first: their addresses, not the host's, are
// what an IP target group or a kubelet probe uses.
func (d *discoverer) detectContainer(note func(string)) (Platform, bool) {
	if v := d.getenv("ECS_CONTAINER_METADATA_URI_V4"); v != "" {
		note("ECS_CONTAINER_METADATA_URI_V4 is set: ECS task (EC2 or Fargate launch type)")
		return ECS, true
	}
	if d.getenv("ECS_CONTAINER_METADATA_URI") != "" {
		note("ECS_CONTAINER_METADATA_URI (v3) is set but not ECS_CONTAINER_METADATA_URI_V4: the ECS agent is older than 1.39 (or Fargate platform older than 1.4); task metadata v4 is needed, so ECS is not used")
	}
	for _, k := range []string{"POD_IP", "POD_IPS", "KUBERNETES_SERVICE_HOST"} {
		if d.getenv(k) != "" {
			note(k + " is set: Kubernetes pod")
			return Kubernetes, true
		}
	}
	return "", false
}

// dmiInfo is what the DMI files say, and where they were read.
type dmiInfo struct {
	values map[string]string // by file name
	path   string            // the directory under sysfs
	root   string
}

// show names a DMI file and its value, as evidence.
func (m dmiInfo) show(f string) string {
	return filepath.Join(m.root, m.path, f) + " is " + quote(m.values[f])
}

// readDMI reads the DMI files from the first sysfs directory that has any.
func (d *discoverer) readDMI() dmiInfo {
	m := dmiInfo{values: map[string]string{}, root: d.sysRoot}
	for _, dir := range []string{"devices/virtual/dmi/id", "class/dmi/id"} {
		for _, f := range dmiFiles {
			if v, ok := d.readSys(filepath.Join(dir, f)); ok {
				m.values[f] = v
				m.path = dir
			}
		}
		if len(m.values) > 0 {
			break
		}
	}
	return m
}

// detectCloud recognises EC2 (Nitro and Xen), GCE and Azure from DMI and
// the Xen hypervisor UUID.
func (d *discoverer) detectCloud(dmi dmiInfo, note func(string)) (Platform, bool) {
	v := dmi.values
	switch {
	case v["sys_vendor"] == "Amazon EC2":
		note(dmi.show("sys_vendor") + ": EC2 (Nitro)")
		return EC2, true
	case v["bios_vendor"] == "Amazon EC2":
		note(dmi.show("bios_vendor") + ": EC2 (Nitro)")
		return EC2, true
	case strings.Contains(strings.ToLower(v["bios_version"]), "amazon"):
		note(dmi.show("bios_version") + ": EC2 (Xen)")
		return EC2, true
	}
	if uuid, ok := d.readSys("hypervisor/uuid"); ok && strings.HasPrefix(strings.ToLower(uuid), "ec2") {
		note(filepath.Join(d.sysRoot, "hypervisor/uuid") + " starts with ec2: EC2 (Xen)")
		return EC2, true
	}
	switch {
	case v["product_name"] == "Google Compute Engine":
		note(dmi.show("product_name") + ": GCE")
		return GCE, true
	case v["sys_vendor"] == "Google":
		note(dmi.show("sys_vendor") + ": GCE")
		return GCE, true
	case v["chassis_asset_tag"] == azureChassisTag:
		note(dmi.show("chassis_asset_tag") + ": Azure")
		return Azure, true
	}
	return "", false
}

// readSys reads a small sysfs file, trimmed. Permission errors and missing
// files read as absent.
func (d *discoverer) readSys(rel string) (string, bool) {
	f, err := os.Open(filepath.Join(d.sysRoot, rel))
	if err != nil {
		return "", false
	}
	defer f.Close()
	buf := make([]byte, 256)
	n, _ := f.Read(buf)
	v := strings.TrimSpace(string(buf[:n]))
	return v, v != ""
}

func quote(s string) string { return "\"" + s + "\"" }
