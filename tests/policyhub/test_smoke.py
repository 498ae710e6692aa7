def test_policy_owner_sees_the_policy_history(policy, owner, client_for):
    response = client_for(owner).get(f"/policies/{policy.slug}/")
    assert response.status_code == 200
    assert b"v1" in response.content and b"v2" in response.content
