package strictjson_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/odcr-autocancel/odcr-autocancel/internal/strictjson"
)

type counts struct {
	Cancelled int `json:"cancelled"`
	Marked    int `json:"marked"`
}

type inner struct {
	Region string `json:"region"`
}

func (i *inner) UnmarshalJSON(data []byte) error {
	type plain inner
	return strictjson.DecodeField("target", data, (*plain)(i))
}

type outer struct {
	DryRun *bool  `json:"dryRun,omitempty"`
	Target *inner `json:"target,omitempty"`
	counts
	Skipped string `json:"-"`
	hidden  int
}

func TestFieldsFollowTheTagsInOrder(t *testing.T) {
	got := strictjson.Fields(&outer{})
	want := []string{"dryRun", "target", "cancelled", "marked"}
	if !slices.Equal(got, want) {
		t.Fatalf("Fields = %v, want %v", got, want)
	}
}

func TestDecodeRefusesWithTheFieldNamed(t *testing.T) {
	for _, tc := range []struct{ give, want string }{
		{`{"dryrun":true}`, `unknown field "dryrun"; accepted fields: dryRun, target, cancelled, marked`},
		{`{"dryRun":true,"dryRun":false}`, `field "dryRun" appears twice`},
		{`{"dryRun":"yes"}`, `field "dryRun": expected true or false, got a JSON string`},
		{`{"cancelled":"2"}`, `field "cancelled": expected an integer, got a JSON string`},
		{`{"target":{"zone":"a"}}`, `field "target": unknown field "zone"; accepted fields: region`},
		{`{"target":{"region":1}}`, `field "target": field "region": expected a string, got a JSON number`},
		{`{} {}`, `malformed JSON: data after the object`},
		{`[]`, `expected a JSON object`},
	} {
		var v outer
		err := strictjson.Decode([]byte(tc.give), &v)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error containing %q", tc.give, err, tc.want)
		}
	}
}

func TestDecodeAcceptsWhatJSONWrote(t *testing.T) {
	dry := true
	want := outer{DryRun: &dry, Target: &inner{Region: "eu-west-1"}, counts: counts{Cancelled: 2}}
	data, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	var got outer
	if err := strictjson.Decode(data, &got); err != nil {
		t.Fatalf("%s: %v", data, err)
	}
	if *got.DryRun != true || got.Target.Region != "eu-west-1" || got.Cancelled != 2 {
		t.Fatalf("decoded %+v", got)
	}
}
