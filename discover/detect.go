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

	// Containers first: their addresses, not the host's, are what an IP
	// target group or a kubelet probe uses.
	if v := d.getenv("ECS_CONTAINER_METADATA_URI_V4"); v != "" {
		note("ECS_CONTAINER_METADATA_URI_V4 is set: ECS task (EC2 or Fargate launch type)")
		return ECS, ev
	}
	if d.getenv("ECS_CONTAINER_METADATA_URI") != "" {
		note("ECS_CONTAINER_METADATA_URI (v3) is set but not ECS_CONTAINER_METADATA_URI_V4: the ECS agent is older than 1.39 (or Fargate platform older than 1.4); task metadata v4 is needed, so ECS is not used")
	}
	for _, k := range []string{"POD_IP", "POD_IPS", "KUBERNETES_SERVICE_HOST"} {
		if d.getenv(k) != "" {
			note(k + " is set: Kubernetes pod")
			return Kubernetes, ev
		}
	}

	dmi := map[string]string{}
	dmiDir := ""
	for _, dir := range []string{"devices/virtual/dmi/id", "class/dmi/id"} {
		for _, f := range dmiFiles {
			if v, ok := d.readSys(filepath.Join(dir, f)); ok {
				dmi[f] = v
				dmiDir = dir
			}
		}
		if len(dmi) > 0 {
			break
		}
	}
	if len(dmi) == 0 {
		note("no DMI files readable under " + filepath.Join(d.sysRoot, "devices/virtual/dmi/id") + " (a container often has none)")
	}
	show := func(f string) string { return filepath.Join(d.sysRoot, dmiDir, f) + " is " + quote(dmi[f]) }

	switch {
	case dmi["sys_vendor"] == "Amazon EC2" || dmi["bios_vendor"] == "Amazon EC2":
		f := "sys_vendor"
		if dmi[f] != "Amazon EC2" {
			f = "bios_vendor"
		}
		note(show(f) + ": EC2 (Nitro)")
		return EC2, ev
	case strings.Contains(strings.ToLower(dmi["bios_version"]), "amazon"):
		note(show("bios_version") + ": EC2 (Xen)")
		return EC2, ev
	}
	if uuid, ok := d.readSys("hypervisor/uuid"); ok {
		if strings.HasPrefix(strings.ToLower(uuid), "ec2") {
			note(filepath.Join(d.sysRoot, "hypervisor/uuid") + " starts with ec2: EC2 (Xen)")
			return EC2, ev
		}
	}
	if dmi["product_name"] == "Google Compute Engine" || dmi["sys_vendor"] == "Google" {
		f := "product_name"
		if dmi[f] != "Google Compute Engine" {
			f = "sys_vendor"
		}
		note(show(f) + ": GCE")
		return GCE, ev
	}
	if dmi["chassis_asset_tag"] == azureChassisTag {
		note(show("chassis_asset_tag") + ": Azure")
		return Azure, ev
	}
	if len(dmi) > 0 {
		note("DMI names no known cloud (sys_vendor " + quote(dmi["sys_vendor"]) + ", product_name " + quote(dmi["product_name"]) + ")")
	}
	note("no platform detected: using local interfaces only, no metadata service is contacted (name one in Options.Platform)")
	return Local, ev
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
