package payment

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/stellar/go-stellar-sdk/processors/token_transfer"
	"github.com/stellar/go-stellar-sdk/strkey"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// TokenTransferRecord is one event of the SDK's token transfer processor (SEP-41 / CAP-67
// transfer, mint, burn, clawback, fee) as a row of Hubble's token_transfers_raw table
// (stellar-etl's TokenTransferOutput), plus transaction_index and event_index (the event's
// position in the ledger's full event list, before any filter).
type TokenTransferRecord struct {
	TransactionHash  string    `json:"transaction_hash"`
	TransactionID    int64     `json:"transaction_id"`
	OperationID      *int64    `json:"operation_id"` // null for fee events
	EventTopic       string    `json:"event_topic"`  // transfer|mint|burn|clawback|fee
	From             *string   `json:"from"`
	To               *string   `json:"to"`
	Asset            *string   `json:"asset"`      // "native" or "<type>:<code>:<issuer>"; null for non-SAC tokens
	AssetType        *string   `json:"asset_type"` // native|credit_alphanum4|credit_alphanum12; null for non-SAC tokens
	AssetCode        *string   `json:"asset_code"`
	AssetIssuer      *string   `json:"asset_issuer"`
	Amount           float64   `json:"amount"`     // amount_raw / 10^7
	AmountRaw        string    `json:"amount_raw"` // integer, in the token's smallest unit
	ContractID       string    `json:"contract_id"`
	LedgerSequence   uint32    `json:"ledger_sequence"`
	ClosedAt         time.Time `json:"closed_at"`
	ToMuxed          *string   `json:"to_muxed"`
	ToMuxedID        *string   `json:"to_muxed_id"`
	TransactionIndex int       `json:"transaction_index"` // 1-based, apply order
	EventIndex       int       `json:"event_index"`       // position among the ledger's token transfer events

	network string
}

// RecordKind implements component.Record.
func (TokenTransferRecord) RecordKind() string { return "token_transfers_raw" }

// NaturalKey implements component.Record: network, ledger, transaction and event position.
func (r TokenTransferRecord) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.EventIndex))
}

type tokenTransferConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
	Assets                  []string `mapstructure:"assets"`
	Accounts                []string `mapstructure:"accounts"`
	EventTypes              []string `mapstructure:"event_types"`
	UnifiedEvents           bool     `mapstructure:"unified_events"`
}

// TokenTransfer emits the SDK's token transfer events (processors/token_transfer, which needs
// the fully decoded ledger; the decode is shared with the pipeline's other processors).
//
// Config: network | network_passphrase; assets (each "native", "CODE:ISSUER" or a token
// contract id "C..."); accounts (G/M/C addresses: an event is kept if its from or to, or its
// muxed destination, is one of them); event_types (transfer, mint, burn, clawback, fee);
// unified_events (read CAP-67 unified events from protocol-23 meta instead of deriving them;
// only for ledgers whose meta carries them).
type TokenTransfer struct {
	net      processor.NetID
	proc     *token_transfer.EventsProcessor
	key      string // of the derived events: the mode and the network
	assets   map[string]bool
	accounts map[string]bool
	topics   map[string]bool
	now      func() time.Time
	stats    *processor.Counters
}

// NewTokenTransfer is the TokenTransfer constructor.
func NewTokenTransfer(c *tokenTransferConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TokenTransfer", env)
	if err != nil {
		return nil, err
	}
	p := &TokenTransfer{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers", "events_found",
		"events_filtered", "transfer_events", "mint_events", "burn_events", "clawback_events", "fee_events",
		"last_ledger", "last_processed_time")}
	if c.UnifiedEvents {
		p.proc = token_transfer.NewEventsProcessorForUnifiedEvents(net.Passphrase)
		p.key = "token_transfer.UnifiedEvents:" + net.Passphrase
	} else {
		p.proc = token_transfer.NewEventsProcessor(net.Passphrase)
		p.key = "token_transfer.EventsFromLedger:" + net.Passphrase
	}
	for _, a := range c.Assets {
		a = strings.TrimSpace(a)
		switch {
		case a == "":
			continue
		case strings.EqualFold(a, "native") || strings.EqualFold(a, "xlm"):
			a = "native"
		case strkey.IsValidContractAddress(a):
		default:
			code, issuer, ok := strings.Cut(a, ":")
			if !ok || code == "" || len(code) > 12 || !strkey.IsValidEd25519PublicKey(issuer) {
				return nil, fmt.Errorf("TokenTransfer: assets: %q is not native, CODE:ISSUER or a contract id", a)
			}
		}
		if p.assets == nil {
			p.assets = map[string]bool{}
		}
		p.assets[a] = true
	}
	for _, a := range c.Accounts {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strkey.IsValidEd25519PublicKey(a) && !strkey.IsValidMuxedAccountEd25519PublicKey(a) && !strkey.IsValidContractAddress(a) {
			if _, err := strkey.Decode(strkey.VersionByteLiquidityPool, a); err != nil {
				if _, err := strkey.Decode(strkey.VersionByteClaimableBalance, a); err != nil {
					return nil, fmt.Errorf("TokenTransfer: accounts: %q is not a Stellar address", a)
				}
			}
		}
		if p.accounts == nil {
			p.accounts = map[string]bool{}
		}
		p.accounts[a] = true
	}
	for _, t := range c.EventTypes {
		t = strings.ToLower(strings.TrimSpace(t))
		switch t {
		case "":
			continue
		case token_transfer.TransferEvent, token_transfer.MintEvent, token_transfer.BurnEvent,
			token_transfer.ClawbackEvent, token_transfer.FeeEvent:
		default:
			return nil, fmt.Errorf("TokenTransfer: event_types: unknown type %q (want transfer, mint, burn, clawback or fee)", t)
		}
		if p.topics == nil {
			p.topics = map[string]bool{}
		}
		p.topics[t] = true
	}
	return p, nil
}

// Stats implements component.StatsReporter.
func (p *TokenTransfer) Stats() map[string]float64 { return p.stats.Snapshot() }

// NeedsDecode implements component.NeedsDecode: every ledger is read fully decoded.
func (p *TokenTransfer) NeedsDecode() bool { return true }

// events are the SDK's token transfer events of the ledger, derived once per ledger, mode and
// network for every pipeline holding it (a shared reader's), from the shared decode; read only.
func (p *TokenTransfer) events(l *ledger.Ledger) ([]*token_transfer.TokenTransferEvent, error) {
	return ledger.Derive(l, p.key,
		func(lcm *xdr.LedgerCloseMeta) ([]*token_transfer.TokenTransferEvent, error) {
			return p.proc.EventsFromLedger(*lcm)
		})
}

// Prepare implements component.Preparer: the events are derived on the decode-ahead workers.
func (p *TokenTransfer) Prepare(l *ledger.Ledger) { _, _ = p.events(l) }

// Process implements component.Processor. The input records are ignored.
func (p *TokenTransfer) Process(_ context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	events, err := p.events(l)
	if err != nil {
		return nil, fmt.Errorf("TokenTransfer: reading token transfer events of ledger %d: %w", l.Sequence(), err)
	}
	out := make([]component.Record, 0, len(events))
	byTopic := map[string]int{}
	for i, ev := range events {
		rec, err := tokenTransferRecord(ev, l, i)
		if err != nil {
			return nil, fmt.Errorf("TokenTransfer: ledger %d event %d: %w", l.Sequence(), i, err)
		}
		if !p.keep(&rec) {
			continue
		}
		rec.network = p.net.Name
		byTopic[rec.EventTopic]++
		out = append(out, rec)
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["events_found"] += float64(len(out))
		m["events_filtered"] += float64(len(events) - len(out))
		for t, n := range byTopic {
			m[t+"_events"] += float64(n)
		}
	})
	return out, nil
}

func (p *TokenTransfer) keep(r *TokenTransferRecord) bool {
	if p.topics != nil && !p.topics[r.EventTopic] {
		return false
	}
	if p.assets != nil {
		ok := p.assets[r.ContractID]
		if r.AssetType != nil {
			if *r.AssetType == "native" {
				ok = ok || p.assets["native"]
			} else {
				ok = ok || p.assets[*r.AssetCode+":"+*r.AssetIssuer]
			}
		}
		if !ok {
			return false
		}
	}
	if p.accounts != nil {
		in := func(s *string) bool { return s != nil && p.accounts[*s] }
		if !in(r.From) && !in(r.To) && !in(r.ToMuxed) {
			return false
		}
	}
	return true
}

func strPtr(s string) *string { return &s }

// tokenTransferRecord flattens one SDK event the way stellar-etl does, with real nulls.
func tokenTransferRecord(ev *token_transfer.TokenTransferEvent, l *ledger.Ledger, idx int) (TokenTransferRecord, error) {
	meta := ev.GetMeta()
	if meta == nil {
		return TokenTransferRecord{}, fmt.Errorf("event without meta")
	}
	r := TokenTransferRecord{
		TransactionHash:  meta.TxHash,
		TransactionID:    processor.TransactionID(meta.LedgerSequence, int(meta.TransactionIndex)),
		EventTopic:       ev.GetEventType(),
		ContractID:       meta.ContractAddress,
		LedgerSequence:   meta.LedgerSequence,
		ClosedAt:         l.CloseTime(),
		TransactionIndex: int(meta.TransactionIndex),
		EventIndex:       idx,
	}
	var from, to string
	switch e := ev.GetEvent().(type) {
	case *token_transfer.TokenTransferEvent_Transfer:
		from, to, r.AmountRaw = e.Transfer.GetFrom(), e.Transfer.GetTo(), e.Transfer.GetAmount()
	case *token_transfer.TokenTransferEvent_Mint:
		to, r.AmountRaw = e.Mint.GetTo(), e.Mint.GetAmount()
	case *token_transfer.TokenTransferEvent_Burn:
		from, r.AmountRaw = e.Burn.GetFrom(), e.Burn.GetAmount()
	case *token_transfer.TokenTransferEvent_Clawback:
		from, r.AmountRaw = e.Clawback.GetFrom(), e.Clawback.GetAmount()
	case *token_transfer.TokenTransferEvent_Fee:
		from, r.AmountRaw = e.Fee.GetFrom(), e.Fee.GetAmount()
	default:
		return r, fmt.Errorf("unknown token transfer event type %T", e)
	}
	if from != "" {
		r.From = strPtr(from)
	}
	if to != "" {
		r.To = strPtr(to)
	}
	f, err := strconv.ParseFloat(r.AmountRaw, 64)
	if err != nil {
		return r, fmt.Errorf("amount %q: %w", r.AmountRaw, err)
	}
	r.Amount = f * 0.0000001
	if meta.OperationIndex != nil { // 1-based (SEP-35), as TOIDs count operations
		opID := processor.TransactionID(meta.LedgerSequence, int(meta.TransactionIndex)) + int64(*meta.OperationIndex)
		r.OperationID = &opID
	}
	if a := ev.GetAsset(); a.GetNative() {
		r.Asset, r.AssetType = strPtr("native"), strPtr("native")
	} else if ia := a.GetIssuedAsset(); ia != nil {
		typ := "credit_alphanum4"
		if len(ia.GetAssetCode()) > 4 {
			typ = "credit_alphanum12"
		}
		r.AssetType, r.AssetCode, r.AssetIssuer = strPtr(typ), strPtr(ia.GetAssetCode()), strPtr(ia.GetIssuer())
		r.Asset = strPtr(typ + ":" + ia.GetAssetCode() + ":" + ia.GetIssuer())
	}
	switch {
	case strings.HasPrefix(to, "M") && strkey.IsValidMuxedAccountEd25519PublicKey(to): // (the SDK check of a G or C address builds an error with a stack)
		if m, err := strkey.DecodeMuxedAccount(to); err == nil {
			r.ToMuxed, r.ToMuxedID = strPtr(to), strPtr(strconv.FormatUint(m.ID(), 10))
		}
	case meta.GetToMuxedInfo() != nil && to != "":
		if _, isID := meta.GetToMuxedInfo().GetContent().(*token_transfer.MuxedInfo_Id); isID {
			var m strkey.MuxedAccount
			if err := m.SetAccountID(to); err == nil {
				m.SetID(meta.GetToMuxedInfo().GetId())
				if addr, err := m.Address(); err == nil {
					r.ToMuxed = strPtr(addr)
					r.ToMuxedID = strPtr(strconv.FormatUint(m.ID(), 10))
				}
			}
		}
	}
	return r, nil
}
