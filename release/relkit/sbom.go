package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"time"
)

// fixSBOM gives a CycloneDX JSON document written without serial number
// and timestamp (cyclonedx-gomod -noserial -notimestamp) the timestamp t
// and a serial number derived from its content, so that two builds of the
// same release write the same bytes.
func fixSBOM(file string, t time.Time) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	var doc map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		return fmt.Errorf("%s: %w", file, err)
	}
	if doc["bomFormat"] != "CycloneDX" {
		return fmt.Errorf("%s: not a CycloneDX JSON document", file)
	}
	if _, ok := doc["serialNumber"]; ok {
		return fmt.Errorf("%s: has a serial number already (run cyclonedx-gomod with -noserial)", file)
	}
	meta, _ := doc["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		doc["metadata"] = meta
	}
	meta["timestamp"] = t.UTC().Format(time.RFC3339)
	canon, err := json.Marshal(doc)
	if err != nil {
		return err
	}
	// A name-based UUID (version 5 layout over SHA-256) of the document.
	h := sha256.Sum256(canon)
	u := h[:16]
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	doc["serialNumber"] = fmt.Sprintf("urn:uuid:%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(out, '\n'), 0o644)
}
