package gateway

import "testing"

func TestRobotMsgType(t *testing.T) {
	f := func(body, want string) {
		t.Helper()
		if got := robotMsgType([]byte(body)); got != want {
			t.Errorf("robotMsgType(%s) = %q, want %q", body, got, want)
		}
	}
	f(`{"msgtype":"text","text":{"content":"hi"}}`, "text")
	f(`{"msgtype":"text","text":{"content":""}}`, "")
	f(`{"msgtype":"text","text":{}}`, "")
	f(`{"msgtype":"markdown","markdown":{"title":"t","text":"# x"}}`, "markdown")
	f(`{"msgtype":"markdown","markdown":{"title":"t"}}`, "")
	f(`{"msgtype":"link","link":{"title":"t","text":"x","messageUrl":"https://e.x"}}`, "link")
	f(`{"msgtype":"link","link":{"title":"t","text":"x"}}`, "")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","singleTitle":"go","singleURL":"https://e.x"}}`, "actionCard")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[{"title":"a","actionURL":"https://e.x"}]}}`, "actionCard")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[]}}`, "")
	f(`{"msgtype":"actionCard","actionCard":{"title":"t","text":"x","btns":[{"title":"a"}]}}`, "")
	f(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"}]}}`, "feedCard")
	f(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u"}]}}`, "")
	f(`{"msgtype":"image","image":{"url":"x"}}`, "")
	f(`{"text":{"content":"hi"}}`, "")
	f(`[{"msgtype":"text"}]`, "")
	f(`{"msgtype":1}`, "")
}

func FuzzRobotMsgType(f *testing.F) {
	f.Add([]byte(`{"msgtype":"text","text":{"content":"hi"}}`))
	f.Add([]byte(`{"msgtype":"feedCard","feedCard":{"links":[{"title":"a","messageURL":"u","picURL":"p"}]}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		switch robotMsgType(b) {
		case "", "text", "markdown", "link", "actionCard", "feedCard":
		default:
			t.Fatal("unknown msgtype returned")
		}
	})
}
