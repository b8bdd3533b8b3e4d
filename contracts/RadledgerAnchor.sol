// SPDX-License-Identifier: Apache-2.0
// Built by tools/build_contract.py with the solc-js pinned in contracts/package.json
// (EVM version paris); the artifact is contracts/RadledgerAnchor.json.
pragma solidity 0.8.37;

/// @title radledger public anchors
/// @notice Records a ledger checkpoint (origin, tree size, RFC 6962 root hash) as an event, so
/// that anyone holding the chain can later show the root existed by that block's time. The
/// contract keeps no state and trusts no one: who anchored is in the event, and what the
/// checkpoint means is proven by the ledger's signature, not by this contract.
contract RadledgerAnchor {
    /// @param originHash keccak256 of the origin, indexed so one ledger's anchors can be found
    /// @param sender the account that sent the anchor
    event Anchored(
        bytes32 indexed originHash,
        address indexed sender,
        string origin,
        uint64 treeSize,
        bytes32 rootHash
    );

    function anchor(string calldata origin, uint64 treeSize, bytes32 rootHash) external {
        emit Anchored(keccak256(bytes(origin)), msg.sender, origin, treeSize, rootHash);
    }
}
