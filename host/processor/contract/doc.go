// Package contract owns the processors of Soroban contracts, each in its own file:
//
//   - ContractEvent: contract events as Hubble's history_contract_events rows (view path);
//   - GetEventsRPC: contract events as Stellar RPC's getEvents returns them, with its filters
//     (view path);
//   - ContractInvocation and ContractCreation: InvokeHostFunction operations, and the
//     contracts they create (view path: only Soroban transactions are decoded; soroban_ops.go
//     walks them);
//   - ContractInvocationExtractor: a transformer of ContractInvocation's records (business
//     fields read from their arguments by extraction schemas);
//   - ContractData and FilterEventsProcessor: contract data entry changes (the SDK's change
//     reader on the shared decoded ledger);
//   - transformers of ContractEvent's records: ContractFilter (by contract; it also filters
//     the other record kinds of this package), EventPaymentExtractor (Kwickbit payments),
//     Soroswap (pairs, reserves, swaps) and SoroswapRouter (the router's swaps, liquidity
//     added and removed).
//
// Processors that read the ledger ignore the records before them and return their own;
// transformers take theirs from the records before them and return only what they make (or
// keep). Contract filters share upstream's keys (contract_id, contract_ids; ids.go).
package contract
