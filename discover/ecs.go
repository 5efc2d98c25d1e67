package discover

import (
	"context"
	"errors"
	"maps"
	"net/netip"
	"slices"
	"strings"
)

const ecsSource = "ecs task metadata"

// ecsTask is the part of the task metadata v4 answer discovery reads.
type ecsTask struct {
	LaunchType string `json:"LaunchType"`
	Containers []struct {
		Name     string `json:"Name"`
		Networks []struct {
			NetworkMode   string   `json:"NetworkMode"`
			IPv4Addresses []string `json:"IPv4Addresses"`
			IPv6Addresses []string `json:"IPv6Addresses"`
		} `json:"Networks"`
	} `json:"Containers"`
}

// ecs adds the task's addresses in awsvpc mode (Fargate, IP target
// groups). In bridge and host mode the load balancer targets the instance,
// so its addresses come from EC2 metadata.
func (d *discoverer) ecs(ctx context.Context, res *Result) error {
	base := strings.TrimRight(d.getenv("ECS_CONTAINER_METADATA_URI_V4"), "/")
	if base == "" {
		return &SourceError{Source: ecsSource, Err: errors.New("ECS_CONTAINER_METADATA_URI_V4 is not set"),
			Hint: "the ECS agent sets it in every container (agent 1.39+, Fargate platform 1.4+); outside ECS name another platform in Options.Platform"}
	}
	url := base + "/task"
	var task ecsTask
	if err := d.getJSON(ctx, fetchRequest{source: ecsSource, url: url}, &task, res); err != nil {
		return err
	}
	modes := map[string]bool{}
	for _, c := range task.Containers {
		for _, n := range c.Networks {
			mode := strings.ToLower(n.NetworkMode)
			modes[mode] = true
			if mode != "awsvpc" {
				continue
			}
			for _, s := range append(append([]string{}, n.IPv4Addresses...), n.IPv6Addresses...) {
				a, err := netip.ParseAddr(s)
				if err != nil {
					return &SourceError{Source: ecsSource, URL: url, Err: errors.New("garbage answer: " + quote(truncate(s)) + " is not an IP address")}
				}
				res.add(a, ecsSource+" (awsvpc)")
			}
		}
	}
	switch {
	case modes["awsvpc"]:
		res.note("%s: launch type %s, network mode awsvpc: the load balancer targets the task's own addresses", url, orUnknown(task.LaunchType))
		if len(res.Addresses) == 0 {
			return &SourceError{Source: ecsSource, URL: url, Err: errors.New("awsvpc mode but the task lists no address")}
		}
		return nil
	case len(modes) == 0:
		return &SourceError{Source: ecsSource, URL: url, Err: errors.New("the task lists no container network")}
	}
	res.note("%s: network mode %s: the load balancer targets the instance, asking EC2 metadata for its addresses", url, strings.Join(slices.Sorted(maps.Keys(modes)), ", "))
	return d.ec2(ctx, res)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
