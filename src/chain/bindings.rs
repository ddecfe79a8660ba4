//! Typed contract bindings, generated at compile time from the committed artifacts in
//! `contracts/out/` (so the node always matches the contracts `make contracts` built).
#![allow(clippy::all, missing_docs)]

ethers::contract::abigen!(
    LilypadController, "contracts/out/LilypadController.json";
    LilypadStorage, "contracts/out/LilypadStorage.json";
    LilypadPayments, "contracts/out/LilypadPayments.json";
    LilypadMediation, "contracts/out/LilypadMediation.json";
    LilypadUsers, "contracts/out/LilypadUsers.json";
    LilypadToken, "contracts/out/LilypadToken.json";
    LilypadOnChainJobCreator, "contracts/out/LilypadOnChainJobCreator.json";
    ExampleClient, "contracts/out/ExampleClient.json";
);
