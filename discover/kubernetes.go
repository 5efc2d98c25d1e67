package discover

import (
	"fmt"
)

// kubernetes adds the pod's and node's addresses that the downward API puts
// in the environment:
//
//	env:
//	- name: POD_IP
//	  valueFrom: {fieldRef: {fieldPath: status.podIP}}
//	- name: POD_IPS
//	  valueFrom: {fieldRef: {fieldPath: status.podIPs}}
//	- name: HOST_IP
//	  valueFrom: {fieldRef: {fieldPath: status.hostIP}}
//
// It reports whether any was set; without them the pod's interfaces give the
// pod IP.
func (d *discoverer) kubernetes(res *Result) (bool, error) {
	found := false
	for _, k := range []string{"POD_IP", "POD_IPS", "HOST_IP", "HOST_IPS"} {
		v := d.getenv(k)
		if v == "" {
			continue
		}
		addrs, err := parseAddrs(v)
		if err != nil {
			return false, &SourceError{Source: "kubernetes downward API", Err: fmt.Errorf("%s: %w", k, err),
				Hint: "set it with fieldRef status.podIP / status.podIPs / status.hostIP"}
		}
		for _, a := range addrs {
			res.add(a, "env "+k)
			found = true
		}
	}
	if !found {
		res.note("no POD_IP, POD_IPS or HOST_IP in the environment: relying on the pod's interfaces; pass them with the downward API (fieldRef status.podIP, status.hostIP) to be explicit")
	}
	return found, nil
}
