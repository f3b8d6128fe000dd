// Package stream owns cdpd's streaming consumers, which hand records to live receivers rather
// than store them, under upstream CDP's type names and keys (registered by host/builtin's
// table). Every record travels as its JSON (encoding/json of the record), one message per
// record, unless upstream's wire format says otherwise (PublishToGooglePubSubV2, the
// notification webhooks).
//
//   - SaveToZeroMQ: a ZeroMQ PUB socket bound to address (pure-Go go-zeromq/zmq4, so cdpd stays
//     cgo-free); one single-frame message per record.
//   - SaveToWebSocket: a WebSocket server (coder/websocket) streaming records to the clients
//     that registered, as upstream's welcome/register protocol and filters; bounded per-client
//     buffers, a client that falls behind is dropped (and counted).
//   - PublishToGooglePubSub, PublishToGooglePubSubV2: Google Pub/Sub (cloud.google.com/go/pubsub/v2),
//     each record (V2: each payment in upstream's V2 envelope) with the ledger as ordering key
//     and the natural key as the natural_key attribute.
//   - NotificationDispatcher: rules over records that POST webhooks through internal/webhook,
//     the delivery the control plane's alerts use.
//
// Each type's doc states its data-safety promise: ZeroMQ and WebSocket deliver at most once
// to the receivers connected at the time (nothing is kept for absent or slow ones, and a
// restart replays its checkpoint window to whoever is then connected); Pub/Sub and the
// notifications deliver at least once (a ledger counts as done once every message of it is
// acknowledged; a crash re-sends the window, which receivers drop by natural key or delivery
// id).
package stream
