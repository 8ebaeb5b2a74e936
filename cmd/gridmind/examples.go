package main

// examples are the Examples sections of the commands' help, by command
// path. They are kept together, rather than beside each command, so that
// they read as one vocabulary: the same homes (~/.gridmind, a devnet's
// ~/.gridmind/devnet/nodeI), the same amounts (a bare number is GRID) and
// the same placeholders. finishTree sets them on commands that have none
// of their own; TestEveryCommandHasExamples keeps the list complete.
var examples = map[string]string{
	"gridmind init": `  # a node identity, API token and commented config in ~/.gridmind
  gridmind init

  # another home is another identity
  gridmind init --home ~/gridmind-2`,

	"gridmind node": `  # run the node of ~/.gridmind: API and /metrics on 127.0.0.1:7070
  gridmind node

  # also run this home's ledger validator (made by 'gridmind chain init')
  gridmind node --validator

  # join a network through a node's address (as 'gridmind node' prints it on that machine)
  gridmind node --bootstrap /ip4/192.0.2.10/tcp/4201/p2p/12D3KooW...

  # the API on another address (--http "" turns it off)
  gridmind node --http 127.0.0.1:7071`,

	"gridmind status": `  gridmind status
  gridmind status --home ~/.gridmind/devnet/node0 --json`,

	"gridmind peers": `  gridmind peers
  gridmind peers --api 127.0.0.1:28000 --json`,

	"gridmind demo": `  # the whole story on this machine; the report goes to ./results/
  gridmind demo

  # leave the network up afterwards, to poke at it from another terminal
  gridmind demo --keep-running --results -

  # a transformer, no crashed worker
  gridmind demo --model transformer --no-crash`,

	"gridmind version": `  gridmind version
  gridmind --version`,

	"gridmind devnet up": `  # 4 node processes, node 0 the validator; homes in ~/.gridmind/devnet/node0..3
  gridmind devnet up --nodes 4

  # then, from another terminal, a job posted through node 0
  gridmind train submit --home ~/.gridmind/devnet/node0 examples/spec.yaml

  # 6 nodes, 3 of them validators, in a folder of your own
  gridmind devnet up --nodes 6 --validators 3 --dir /tmp/devnet`,

	"gridmind chain init": `  # a single-validator chain in ~/.gridmind/chain, this node its validator
  gridmind chain init
  gridmind node --validator

  # fund another account at genesis (amounts are GRID)
  gridmind chain init --account 12D3KooW...=5000

  # 3 validators with their own homes, for 'gridmind devnet up --dir ./localchain'
  gridmind chain init --validators 3 --dir ./localchain`,

	"gridmind chain status": `  gridmind chain status
  gridmind chain status --rpc http://127.0.0.1:26657 --json`,

	"gridmind wallet address": `  gridmind wallet address
  gridmind wallet address --home ~/.gridmind/devnet/node1`,

	"gridmind wallet balance": `  # this node's account
  gridmind wallet balance

  # any account, as JSON (amounts in µGRID, reputation in parts per million: docs/JOBSPEC.md)
  gridmind wallet balance 12D3KooW... --json

  # a devnet node's
  gridmind wallet balance --home ~/.gridmind/devnet/node2`,

	"gridmind wallet send": `  # 50 GRID; a bare number is GRID, 1500u is 1500 µGRID
  gridmind wallet send 12D3KooW... 50
  gridmind wallet send 12D3KooW... 0.25 --memo "for the GPU hours"

  # from devnet node 0 to node 1
  gridmind wallet send $(gridmind wallet address --home ~/.gridmind/devnet/node1) 50 --home ~/.gridmind/devnet/node0`,

	"gridmind wallet stake": `  # bond 10 GRID: a provider is leased only while its stake exceeds a round's pay
  gridmind wallet stake 10`,

	"gridmind wallet unstake": `  # start unbonding 5 GRID; it returns to the balance after the unbonding period
  gridmind wallet unstake 5`,

	"gridmind wallet history": `  gridmind wallet history
  gridmind wallet history 12D3KooW... --limit 100 --json`,

	"gridmind wallet tx": `  # did it commit? HASH is what every wallet command prints
  gridmind wallet tx 6db747848d03c23d144ebc5a173873d8e8d87acdc9972b9e9176856bcc7d3ffb`,

	"gridmind jobs list": `  gridmind jobs list
  gridmind jobs list --state running --api 127.0.0.1:28000
  gridmind jobs list --requester $(gridmind wallet address) --json`,

	"gridmind jobs show": `  # a job's spec, escrow, leases and rounds (the ID is in 'gridmind jobs list'; a unique prefix will do)
  gridmind jobs show 1637cdacba3d2c80b27777e7d55eb48c
  gridmind jobs show 1637cd
  gridmind jobs show 1637cdacba3d2c80b27777e7d55eb48c --json`,

	"gridmind jobs explain": `  # ask the node that posted the job: only it keeps the placement record
  gridmind jobs explain 1637cdacba3d2c80b27777e7d55eb48c --home ~/.gridmind/devnet/node0`,

	"gridmind jobs cancel": `  # with the home of the node that posted it
  gridmind jobs cancel 1637cdacba3d2c80b27777e7d55eb48c --home ~/.gridmind/devnet/node0`,

	"gridmind jobs watch": `  # each round as it settles, until the job ends (a unique prefix of the id will do)
  gridmind jobs watch 1637cdac --home ~/.gridmind/devnet/node0

  # Ctrl-C stops watching; the job goes on (cancel it with 'gridmind jobs cancel ID')
  gridmind jobs watch 1637cdacba3d2c80b27777e7d55eb48c --api 127.0.0.1:28000 --interval 5s`,

	"gridmind models": `  # what this node holds and serves, and the jobs' final models
  gridmind models
  gridmind models --home ~/.gridmind/devnet/node1 --json`,

	"gridmind models list": `  gridmind models list
  gridmind models list --api 127.0.0.1:28000 --json`,

	"gridmind models show": `  # a unique prefix of the hash will do
  gridmind models show 3fa2c1
  gridmind models show 3fa2c1 --json`,

	"gridmind models serve": `  # fetch a model from the peers that hold it, check its hash and serve it (needs this home's API token)
  gridmind models serve 3fa2c1
  gridmind models serve 3fa2c1 --home ~/.gridmind/devnet/node2

  # a checkpoint of your own: trained here, then served by this home's node
  gridmind train local --save model.ckpt
  gridmind models serve --file model.ckpt`,

	"gridmind models export": `  # a model this home's node holds, by a unique prefix of its hash
  gridmind models export 3fa2c1 --out model.safetensors

  # a checkpoint of your own, no node needed
  gridmind train local --save model.ckpt
  gridmind models export --file model.ckpt --out model.safetensors`,

	"gridmind models import": `  # check a file against its architecture and print its hash, no node needed
  gridmind models import model.safetensors --check

  # have this home's node serve it (needs the API token), then query it
  gridmind models import model.safetensors
  gridmind infer --model 3fa2c1 "func main() {"`,

	"gridmind jobs close": `  # anyone, once the job is past its deadline or idle too long
  gridmind jobs close 1637cdacba3d2c80b27777e7d55eb48c`,

	"gridmind train local": `  gridmind train local
  gridmind train local --workers 4 --rounds 5 --inner-steps 20 --data ./my-texts/ --save model.ckpt`,

	"gridmind infer": `  # HASH: the model hash a finished job prints, or a unique prefix of it (see 'gridmind models')
  gridmind infer --model HASH "func main() {"
  gridmind infer --model 3fa2c1 "func main() {"
  gridmind infer --api 127.0.0.1:28000 --model HASH --max-tokens 200 --temperature 0 "package main"`,

	"gridmind serve": `  # fetch a model from the peers that hold it, check its hash and serve it
  gridmind serve --model HASH
  gridmind serve --home ~/.gridmind/devnet/node2 --model HASH`,

	"gridmind bench p2p": `  gridmind bench p2p > p2p.md
  gridmind bench p2p --gossip 10,50 --stream-mib 64`,

	"gridmind bench ledger": `  # 60 s of mixed load on 1, then 4 validator processes; the report goes to ledger.md
  gridmind bench ledger > ledger.md

  # one validator, a shorter run
  gridmind bench ledger --validators 1 --duration 20s

  # where the time goes: everything in this process, with a CPU profile
  gridmind bench ledger --validators 1 --in-process --cpuprofile ledger.pprof
  go tool pprof -top ledger.pprof`,

	"gridmind bench market": `  gridmind bench market > market.md
  gridmind bench market --nodes 100000 --runs 1`,

	"gridmind bench energy": `  gridmind bench energy > energy.md
  gridmind bench energy --nodes 500 --scenarios winter --svg energy.svg`,

	"gridmind bench train": `  gridmind bench train > train.md
  gridmind bench train --codec int4 --inner-steps 10,50 --workers 4`,

	"gridmind bench infer": `  gridmind bench infer > infer.md
  gridmind bench infer --replicas 20 --kill 0.3`,

	"gridmind bench verify": `  gridmind bench verify > verify.md
  gridmind bench verify --ledger-runs 0 --reexec-steps 0`,

	"gridmind bench byzantine": `  # seconds, with the bigram toy model
  gridmind bench byzantine --toy
  gridmind bench byzantine --attacks sign-flip,noise --rules mean,median > byzantine.md`,

	"gridmind bench memory": `  # a 5-node devnet idle for 10 minutes; the report goes to memory.md
  gridmind bench memory > memory.md

  # a quick look, and Go's default collector alongside for comparison
  gridmind bench memory --minutes 1 --compare-env GOGC=100`,

	"gridmind bench wan": `  gridmind bench wan > wan.md
  gridmind bench wan --links home,home-slow --rounds 2`,
}
