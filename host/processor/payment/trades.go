package payment

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/stellar/go-stellar-sdk/amount"
	"github.com/stellar/go-stellar-sdk/ingest"
	"github.com/stellar/go-stellar-sdk/xdr"

	"github.com/withobsrvr/cdpd/host/component"
	"github.com/withobsrvr/cdpd/host/ledger"
	"github.com/withobsrvr/cdpd/host/processor"
)

// AppTrade is one trade, with upstream CDP's AppTrade field names, seen from the account whose
// operation made it (the taker): seller_id sold sell_amount of sell_asset to the offer's owner
// (buyer_id) or to a liquidity pool, and received buy_amount of buy_asset. Assets are "native"
// or CODE:ISSUER; amounts have 7 decimals.
type AppTrade struct {
	Timestamp        string          `json:"timestamp"` // close time, unix seconds
	SellerID         string          `json:"seller_id"` // the operation's source (G..., a muxed source resolved)
	BuyerID          *string         `json:"buyer_id"`  // the claimed offer's owner; null for a pool trade
	SellAsset        string          `json:"sell_asset"`
	BuyAsset         string          `json:"buy_asset"`
	SellAmount       string          `json:"sell_amount"`
	BuyAmount        string          `json:"buy_amount"`
	Price            float64         `json:"price"`   // buy_amount / sell_amount
	PriceN           int64           `json:"price_n"` // buy amount in stroops
	PriceD           int64           `json:"price_d"` // sell amount in stroops
	Type             string          `json:"type"`    // trade
	TradeType        string          `json:"trade_type"`
	OrderbookID      *string         `json:"orderbook_id"`   // the claimed offer's id; null for a pool trade
	LiquidityPool    *string         `json:"liquidity_pool"` // hex pool id of a pool trade
	SellAssetDetails json.RawMessage `json:"sell_asset_details"`
	BuyAssetDetails  json.RawMessage `json:"buy_asset_details"`
	OperationType    string          `json:"operation_type"`
	LedgerSequence   uint32          `json:"ledger_sequence"`
	ClosedAt         time.Time       `json:"closed_at"`
	TransactionHash  string          `json:"transaction_hash"`
	TransactionIndex int             `json:"transaction_index"` // 1-based, apply order
	OperationIndex   int             `json:"operation_index"`   // 0-based
	OperationID      int64           `json:"operation_id"`
	Order            int             `json:"order"` // the trade's position among its operation's trades (Horizon's order)

	network string
}

// RecordKind implements component.Record.
func (AppTrade) RecordKind() string { return "app_trades" }

// NaturalKey implements component.Record: network, ledger, transaction, operation and order.
func (r AppTrade) NaturalKey() string {
	return processor.Key(r.network, r.LedgerSequence, r.TransactionHash, strconv.Itoa(r.OperationIndex), strconv.Itoa(r.Order))
}

type transformToAppTradeConfig struct {
	processor.NetworkConfig `mapstructure:",squash"`
}

// TransformToAppTrade emits the ledger's trades as Horizon defines them (its trades
// processor): one per claim atom (a claimed offer or a liquidity pool exchange) in the
// results of the successful manage_sell_offer, manage_buy_offer, create_passive_sell_offer,
// path_payment_strict_receive and path_payment_strict_send operations, skipping the zeroed
// atoms of offers stellar-core removed without trading. It reads the transactions through the
// SDK's zero-copy transaction views (ingest.LedgerTransactionViewRange), decodes each
// successful transaction's result and, only when it traded, its envelope; the meta is never
// decoded. Its input records are ignored (as upstream's, it reads the ledger).
//
// Config: network | network_passphrase (or the pipeline's network).
//
// Differences from upstream, each a fix: upstream emitted a "trade" for every manage offer
// operation, traded or not, of failed transactions too, with the offer's own amount as both
// amounts and the operation's price, the transaction's source as seller and no buyer; it
// missed path payment and passive offer trades. cdpd emits the trades that happened, with
// both parties, the amounts exchanged and the claimed offer's id. The asset details carry the
// close time (upstream left it zero). trade_type (orderbook|liquidity_pool), price_n/price_d,
// the operation and its position are cdpd's additions. Horizon calls the claimed offer's owner
// the seller (its base side) and the taker the buyer; cdpd keeps upstream's orientation, in
// which the taker sold sell_asset.
type TransformToAppTrade struct {
	net   processor.NetID
	now   func() time.Time
	stats *processor.Counters
}

// NewTransformToAppTrade is the TransformToAppTrade constructor.
func NewTransformToAppTrade(c *transformToAppTradeConfig, env component.Env) (component.Processor, error) {
	net, err := c.ResolveFor("TransformToAppTrade", env)
	if err != nil {
		return nil, err
	}
	return &TransformToAppTrade{net: net, now: processor.Clock(env), stats: processor.NewCounters("processed_ledgers",
		"trades_found", "orderbook_trades", "liquidity_pool_trades", "last_ledger", "last_processed_time")}, nil
}

// Stats implements component.StatsReporter.
func (p *TransformToAppTrade) Stats() map[string]float64 { return p.stats.Snapshot() }

// Process implements component.Processor. The input records are ignored.
func (p *TransformToAppTrade) Process(ctx context.Context, l *ledger.Ledger, _ []component.Record) ([]component.Record, error) {
	txs, err := ingest.LedgerTransactionViewRange(l.View(), 0, 0, p.net.Passphrase)
	if err != nil {
		return nil, fmt.Errorf("TransformToAppTrade: reading transactions of ledger %d: %w", l.Sequence(), err)
	}
	out := []component.Record{}
	for _, tx := range txs {
		if !tx.Successful {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		var res xdr.TransactionResult
		if err := xdr.SafeUnmarshal(tx.Result, &res); err != nil {
			return nil, fmt.Errorf("TransformToAppTrade: ledger %d transaction %d: decoding result: %w", l.Sequence(), tx.ApplicationOrder, err)
		}
		info := tradeTx{seq: l.Sequence(), closedAt: l.CloseTime(), hash: xdr.Hash(tx.Hash).HexString(), index: int(tx.ApplicationOrder)}
		out, err = p.trades(out, info, res, func() (xdr.TransactionEnvelope, error) {
			var env xdr.TransactionEnvelope
			return env, xdr.SafeUnmarshal(tx.Envelope, &env)
		})
		if err != nil {
			return nil, fmt.Errorf("TransformToAppTrade: ledger %d transaction %s: %w", l.Sequence(), info.hash, err)
		}
	}
	pools := 0
	for _, r := range out {
		if r.(AppTrade).LiquidityPool != nil {
			pools++
		}
	}
	p.stats.Update(func(m map[string]float64) {
		processor.LedgerDone(m, l.Sequence(), p.now())
		m["trades_found"] += float64(len(out))
		m["orderbook_trades"] += float64(len(out) - pools)
		m["liquidity_pool_trades"] += float64(pools)
	})
	return out, nil
}

// tradeTx is the transaction a trade belongs to.
type tradeTx struct {
	seq      uint32
	closedAt time.Time
	hash     string
	index    int // 1-based apply order
}

// trades appends the trades of one successful transaction. envelope decodes the transaction's
// envelope; it is called only when the transaction traded.
func (p *TransformToAppTrade) trades(out []component.Record, tx tradeTx, res xdr.TransactionResult,
	envelope func() (xdr.TransactionEnvelope, error)) ([]component.Record, error) {
	results, ok := res.OperationResults()
	if !ok {
		return out, nil
	}
	var (
		env    xdr.TransactionEnvelope
		ops    []xdr.Operation
		loaded bool
	)
	for i, r := range results {
		for order, atom := range claimAtoms(r) {
			if atom.AmountSold() == 0 && atom.AmountBought() == 0 {
				continue // an offer stellar-core removed without trading (Horizon skips these too)
			}
			if !loaded {
				var err error
				if env, err = envelope(); err != nil {
					return nil, fmt.Errorf("decoding envelope: %w", err)
				}
				ops, loaded = env.Operations(), true
			}
			if i >= len(ops) {
				return nil, fmt.Errorf("result of operation %d without the operation", i)
			}
			opType, ok := tradingOps[ops[i].Body.Type]
			if !ok {
				return nil, fmt.Errorf("operation %d: a %v operation with trades in its result", i, ops[i].Body.Type)
			}
			src := env.SourceAccount()
			if ops[i].SourceAccount != nil {
				src = *ops[i].SourceAccount
			}
			t, err := p.trade(tx, atom, src, opType, i, order)
			if err != nil {
				return nil, fmt.Errorf("operation %d trade %d: %w", i, order, err)
			}
			out = append(out, t)
		}
	}
	return out, nil
}

// claimAtoms are the trades in an operation's result. It goes by the result's arm, not the
// operation's type: stellar-core gives some create_passive_sell_offer operations a
// manage_sell_offer result (a known issue Horizon's trades processor handles the same way).
func claimAtoms(r xdr.OperationResult) []xdr.ClaimAtom {
	tr, ok := r.GetTr()
	if !ok {
		return nil
	}
	switch tr.Type {
	case xdr.OperationTypeManageSellOffer:
		if s, ok := tr.MustManageSellOfferResult().GetSuccess(); ok {
			return s.OffersClaimed
		}
	case xdr.OperationTypeManageBuyOffer:
		if s, ok := tr.MustManageBuyOfferResult().GetSuccess(); ok {
			return s.OffersClaimed
		}
	case xdr.OperationTypeCreatePassiveSellOffer:
		if s, ok := tr.MustCreatePassiveSellOfferResult().GetSuccess(); ok {
			return s.OffersClaimed
		}
	case xdr.OperationTypePathPaymentStrictReceive:
		if s, ok := tr.MustPathPaymentStrictReceiveResult().GetSuccess(); ok {
			return s.Offers
		}
	case xdr.OperationTypePathPaymentStrictSend:
		if s, ok := tr.MustPathPaymentStrictSendResult().GetSuccess(); ok {
			return s.Offers
		}
	}
	return nil
}

// tradingOps are Horizon's names of the operation types that trade.
var tradingOps = map[xdr.OperationType]string{
	xdr.OperationTypeManageSellOffer:          "manage_sell_offer",
	xdr.OperationTypeManageBuyOffer:           "manage_buy_offer",
	xdr.OperationTypeCreatePassiveSellOffer:   "create_passive_sell_offer",
	xdr.OperationTypePathPaymentStrictReceive: "path_payment_strict_receive",
	xdr.OperationTypePathPaymentStrictSend:    "path_payment_strict_send",
}

func (p *TransformToAppTrade) trade(tx tradeTx, atom xdr.ClaimAtom, taker xdr.MuxedAccount, opType string, op, order int) (AppTrade, error) {
	// The atom is the maker's side: it sold AssetSold and bought AssetBought. The taker (the
	// operation's source) sold what the maker bought.
	sold, bought := atom.AmountBought(), atom.AmountSold()
	t := AppTrade{
		Timestamp: strconv.FormatInt(tx.closedAt.Unix(), 10), Type: "trade", TradeType: "orderbook", OperationType: opType,
		SellAsset: atom.AssetBought().StringCanonical(), BuyAsset: atom.AssetSold().StringCanonical(),
		SellAmount: amount.String(sold), BuyAmount: amount.String(bought), PriceN: int64(bought), PriceD: int64(sold),
		LedgerSequence: tx.seq, ClosedAt: tx.closedAt, TransactionHash: tx.hash, TransactionIndex: tx.index,
		OperationIndex: op, OperationID: processor.OperationID(tx.seq, tx.index, op), Order: order, network: p.net.Name,
	}
	t.SellerID, _ = processor.AccountOf(taker)
	if sold != 0 {
		t.Price = float64(bought) / float64(sold)
	}
	if atom.Type == xdr.ClaimAtomTypeClaimAtomTypeLiquidityPool {
		id := atom.MustLiquidityPool().LiquidityPoolId
		s := hex.EncodeToString(id[:])
		t.TradeType, t.LiquidityPool = "liquidity_pool", &s
	} else {
		b, o := atom.SellerId().Address(), strconv.FormatInt(int64(atom.OfferId()), 10)
		t.BuyerID, t.OrderbookID = &b, &o
	}
	var err error
	if t.SellAssetDetails, err = assetDetails(atom.AssetBought(), tx.closedAt); err != nil {
		return t, err
	}
	if t.BuyAssetDetails, err = assetDetails(atom.AssetSold(), tx.closedAt); err != nil {
		return t, err
	}
	return t, nil
}

// assetDetails is upstream's AssetDetails object: code ("XLM" for lumens), issuer (absent for
// lumens), type, timestamp.
func assetDetails(a xdr.Asset, at time.Time) (json.RawMessage, error) {
	typ, code, issuer := assetOf(a)
	d := struct {
		Code      string    `json:"code"`
		Issuer    *string   `json:"issuer,omitempty"`
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
	}{Code: "XLM", Issuer: issuer, Type: typ, Timestamp: at.UTC()}
	if code != nil {
		d.Code = *code
	}
	return json.Marshal(d)
}
